//! Image loaders (placeholder while being written).
