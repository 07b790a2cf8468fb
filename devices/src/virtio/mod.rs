//! virtio 1.x devices and transports (placeholder; being written).
