//! PCI (placeholder; being written).
