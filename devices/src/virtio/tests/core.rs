//! The status handshake, feature negotiation and queue configuration, through mmio registers.
//! Teaches: what the device refuses during bring-up, and that a reset really forgets everything.

use super::blk::*;
use super::*;
use crate::virtio::blk::*;
use crate::virtio::rng::VirtioRng;

fn rng() -> Box<dyn VirtioDevice> {
    Box::new(VirtioRng::new(1))
}

#[test]
fn identification_registers() {
    let mut d = Driver::new(rng());
    assert_eq!(d.read(REG_MAGIC), 0x7472_6976);
    assert_eq!(d.read(REG_VERSION), 2);
    assert_eq!(d.read(REG_DEVICE_ID), DEVICE_ID_ENTROPY);
    assert_eq!(d.read(REG_VENDOR_ID).to_le_bytes(), *b"vmsc");
    // No shared memory regions: length -1, base all ones.
    d.write(REG_SHM_SEL, 0);
    for r in [
        REG_SHM_LEN_LOW,
        REG_SHM_LEN_HIGH,
        REG_SHM_BASE_LOW,
        REG_SHM_BASE_HIGH,
    ] {
        assert_eq!(d.read(r), u32::MAX);
    }
    assert_eq!(d.read(REG_QUEUE_RESET), 0);
    // Only aligned 32-bit control register accesses mean anything.
    assert_eq!(d.dev.mmio_read(REG_MAGIC, 2, &mut d.t.ctx()), 0);
    assert_eq!(d.dev.mmio_read(REG_MAGIC + 1, 4, &mut d.t.ctx()), 0);
    assert_eq!(BusDevice::name(&d.dev), "virtio-rng");
}

#[test]
fn the_offer_always_includes_version_1_and_the_ring_features() {
    let mut d = Driver::new(rng());
    let f = d.offered();
    assert_eq!(f, V1 | INDIRECT | EVENT_IDX);
    d.write(REG_DEVICE_FEATURES_SEL, 2);
    assert_eq!(d.read(REG_DEVICE_FEATURES), 0, "no words past 64 bits");
}

#[test]
fn a_driver_refusing_version_1_never_gets_features_ok() {
    let mut d = Driver::new(rng());
    assert!(
        !d.negotiate(INDIRECT | EVENT_IDX),
        "legacy drivers are not served"
    );
    assert_eq!(d.status(), STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    // DRIVER_OK without FEATURES_OK is refused too.
    d.driver_ok();
    assert_eq!(d.status() & STATUS_DRIVER_OK, 0);
    assert_eq!(d.dev.stats().features_refused, 1);
    // A feature the device did not offer: refused as well.
    assert!(!d.negotiate(V1 | 1 << 3));
    assert!(d.negotiate(V1));
    assert_eq!(d.dev.core().negotiated_features(), V1);
}

#[test]
fn features_are_fixed_once_accepted() {
    let mut d = Driver::new(rng());
    assert!(d.negotiate(V1));
    d.write(REG_DRIVER_FEATURES_SEL, 0);
    d.write(REG_DRIVER_FEATURES, INDIRECT as u32);
    assert_eq!(
        d.dev.core().negotiated_features(),
        V1,
        "renegotiation needs a reset"
    );
    // The driver cannot clear a status bit, nor set NEEDS_RESET.
    d.write(REG_STATUS, u32::from(STATUS_ACKNOWLEDGE));
    assert_eq!(
        d.status(),
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK
    );
    let s = d.status();
    d.write(REG_STATUS, u32::from(s | STATUS_NEEDS_RESET));
    assert_eq!(d.status() & STATUS_NEEDS_RESET, 0);
}

#[test]
fn queue_sizes_must_be_powers_of_two_within_the_maximum() {
    let mut d = Driver::new(rng());
    assert!(d.negotiate(V1));
    d.write(REG_QUEUE_SEL, 0);
    assert_eq!(d.read(REG_QUEUE_NUM_MAX), 64);
    assert_eq!(
        d.dev.core().queue_size(),
        64,
        "after reset the size is the maximum"
    );
    for bad in [0, 3, 48, 128, 0x1_0000] {
        d.write(REG_QUEUE_NUM, bad);
        assert_eq!(d.dev.core().queue_size(), 0, "size {bad} refused");
        d.write(REG_QUEUE_READY, 1);
        assert_eq!(
            d.read(REG_QUEUE_READY),
            0,
            "size {bad}: the queue cannot be enabled"
        );
    }
    d.write(REG_QUEUE_NUM, 8);
    d.write(REG_QUEUE_READY, 1);
    assert_eq!(d.read(REG_QUEUE_READY), 1);
    // A queue the device does not have.
    d.write(REG_QUEUE_SEL, 1);
    assert_eq!(d.read(REG_QUEUE_NUM_MAX), 0);
    d.write(REG_QUEUE_READY, 1);
    assert_eq!(d.read(REG_QUEUE_READY), 0);
}

#[test]
fn an_enabled_queue_and_a_running_device_keep_their_queue_setup() {
    let mut d = Driver::up(rng(), V1);
    let core = d.dev.core();
    let q = core.queue(0).unwrap().clone();
    let ignored = core.stats().writes_ignored;
    d.write(REG_QUEUE_SEL, 0);
    d.write(REG_QUEUE_NUM, 4);
    d.write(REG_QUEUE_DESC_LOW, 0x4000);
    d.write(REG_QUEUE_DEVICE_HIGH, 1);
    assert_eq!(d.dev.core().queue(0).unwrap(), &q);
    // Even a disabled queue cannot be set up again after DRIVER_OK (no VIRTIO_F_RING_RESET).
    d.write(REG_QUEUE_READY, 0);
    d.write(REG_QUEUE_NUM, 4);
    assert_eq!(d.dev.core().queue(0).unwrap().size(), 64);
    assert_eq!(d.dev.stats().writes_ignored, ignored + 4);
}

#[test]
fn notifications_before_driver_ok_are_ignored() {
    let disk = disk(false);
    let mut d = Driver::new(Box::new(VirtioBlk::new(Box::new(disk.clone()))));
    let offer = d.offered();
    assert!(d.negotiate(offer));
    d.setup_queue(0, 16);
    d.put(HDR, &header(VIRTIO_BLK_T_OUT, 0));
    d.put(OUT, &[0x11; 512]);
    let head = d.add_chain(0, &[(HDR, 16, false), (OUT, 512, false), (STATUS, 1, true)]);
    d.publish(0, head);
    let before = d.t.ram.clone();
    d.t.dma_writes.clear();
    d.notify(0);
    d.notify(7);
    assert_eq!(d.dev.stats().notifications_ignored, 2);
    assert_eq!(d.dev.stats().notifications, 0);
    assert!(
        d.t.dma_writes.is_empty() && d.t.ram == before,
        "no RAM touched"
    );
    assert_eq!(contents(&disk)[0], 0, "disk untouched");
    // After DRIVER_OK the same notification does the work.
    d.driver_ok();
    d.notify(0);
    assert_eq!(d.get(STATUS, 1)[0], VIRTIO_BLK_S_OK);
    assert_eq!(contents(&disk)[0], 0x11);
}

#[test]
fn reset_clears_status_queues_and_interrupts() {
    let disk = disk(false);
    let mut d = blk_up(&disk);
    request(&mut d, VIRTIO_BLK_T_IN, 0, &[], 512);
    assert!(d.irq_high());
    let generation = d.read(REG_CONFIG_GENERATION);
    d.write(REG_STATUS, 0);
    assert_eq!(d.status(), 0);
    assert_eq!(d.read(REG_INTERRUPT_STATUS), 0);
    assert!(!d.irq_high(), "the line drops with the ISR");
    d.write(REG_QUEUE_SEL, 0);
    assert_eq!(d.read(REG_QUEUE_READY), 0);
    let q = d.dev.core().queue(0).unwrap();
    assert_eq!((q.size(), q.used_idx(), q.next_avail()), (QUEUE_SIZE, 0, 0));
    assert_eq!(q.addr(QueueArea::Descriptors), 0);
    assert_eq!(d.dev.core().negotiated_features(), 0);
    assert_eq!(d.read(REG_CONFIG_GENERATION), generation);
    // Set up from scratch (fresh rings in fresh memory), it works again.
    d.t.ram.fill(0);
    d.q.clear();
    let offer = d.offered();
    assert!(d.negotiate(offer));
    d.setup_queue(0, 8);
    d.driver_ok();
    let (status, _, data) = request(&mut d, VIRTIO_BLK_T_IN, 1, &[], 512);
    assert_eq!(
        (status, data),
        (VIRTIO_BLK_S_OK, contents(&disk)[512..1024].to_vec())
    );
}

#[test]
fn a_config_change_bumps_the_generation_and_interrupts_a_running_driver() {
    let mut d = Driver::new(rng());
    let g = d.read(REG_CONFIG_GENERATION);
    assert!(
        !d.dev.core_mut().signal_config_change().any(),
        "no driver yet: no interrupt"
    );
    assert_eq!(d.read(REG_CONFIG_GENERATION), g.wrapping_add(1));
    let mut d = Driver::up(rng(), V1);
    assert!(d.dev.core_mut().signal_config_change().config);
    d.dev.tick(&mut d.t.ctx());
    assert!(d.irq_high());
    assert_eq!(d.handle_irq(), u32::from(ISR_CONFIG));
    assert!(!d.irq_high());
}
