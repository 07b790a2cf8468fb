//! ATA/IDE disk controller, PIO (placeholder; being written).
