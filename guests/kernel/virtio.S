# virtio.S — what every virtio driver here shares, whatever the device (virtio_blk.S, console.S)
# and the transport (virtio_mmio.S, virtio_pci.S): the device and queue structures, the
# transport operations, the initialisation up to FEATURES_OK, DRIVER_OK.
# Teaches: a virtio device is four things — a status byte, feature bits, a configuration
# space, virtqueues — reached through a transport that is only a register map. So the
# handshake (virtio 1.2 section 3.1: reset; ACKNOWLEDGE, "I see a virtio device"; DRIVER, "I
# can drive it"; read the offered features, write the accepted ones; FEATURES_OK, read back —
# the device may refuse; set up the queues; DRIVER_OK) is written once, here. Each transport
# supplies a table of operations (like the pv_ops); each driver its queues and its requests.
#
# A device is a `struct vdev` (VD_*): a transport's probe fills it in. A queue is a
# `struct vq` (Q_*): the driver says which queue it is and where its three areas are; its size
# and doorbell come from VT_SETUP_QUEUE; the indices are the driver's to keep.

.set VS_ACKNOWLEDGE,  1
.set VS_DRIVER,       2
.set VS_DRIVER_OK,    4
.set VS_FEATURES_OK,  8
.set VF_INDIRECT_DESC, 28
.set VF_EVENT_IDX,    29
.set VF_VERSION_1,    32
.set VIRTQ_DESC_F_NEXT, 1
.set VIRTQ_DESC_F_WRITE, 2
.set VIRTQ_DESC_F_INDIRECT, 4
.set VIRTQ_AVAIL_F_NO_INTERRUPT, 1
.set VIRTQ_USED_F_NO_NOTIFY, 1
.set VIRTIO_PCI_VENDOR,   0x1AF4
.set VIRTIO_PCI_MODERN,   0x1040    # a modern device's PCI ID is 0x1040 + its device type

# struct vdev — one virtio device as its driver knows it:
.set VD_OPS,         0              # the transport's operations (virtio_mmio_ops, virtio_pci_ops)
.set VD_BASE,        8              # mmio: the register window; pci: the common configuration
.set VD_NOTIFY,      16             # pci: the notification area,
.set VD_NOTIFY_MULT, 24             #   its notify_off_multiplier,
.set VD_ISR,         32             #   the ISR byte,
.set VD_DEVCFG,      40             #   the device configuration,
.set VD_PCI_CFG,     48             #   the function's config address
.set VD_GSI,         56             # the interrupt line
.set VD_SIZE,        64
# struct vq — one virtqueue of a device:
.set Q_INDEX,        0              # the queue's number in its device
.set Q_DESC,         8              # where its descriptor table,
.set Q_AVAIL,        16             #   available ring (driver area)
.set Q_USED,         24             #   and used ring (device area) are
.set Q_SIZE,         32             # entries, a power of two (VT_SETUP_QUEUE)
.set Q_DOORBELL,     40             # pci: the queue's doorbell (VT_SETUP_QUEUE)
.set Q_AVAIL_IDX,    48             # the driver's next available index (free-running)
.set Q_USED_IDX,     56             # the used index all completions so far reached
.set VQ_STRUCT,      64

# The transport operations, a table of pointers each transport provides:
.set VT_RESET,        0             # reset the device and wait until it is done
.set VT_GET_STATUS,   8             # EAX = the device status
.set VT_SET_STATUS,   16            # EDI = the new device status
.set VT_GET_FEATURES, 24            # EDI = word (0: bits 0-31, 1: 32-63); EAX = offered
.set VT_SET_FEATURES, 32            # EDI = word, ESI = accepted
.set VT_SETUP_QUEUE,  40            # EDI = size wanted, RSI = a struct vq; EAX = size or 0
.set VT_NOTIFY,       48            # RSI = a struct vq: ring its doorbell
.set VT_ISR,          56            # EAX = the interrupt status, acknowledged
.set VT_CONFIG32,     64            # EDI = offset; EAX = that dword of device configuration
.set VT_GENERATION,   72            # EAX = the configuration generation
.set VT_DESCRIBE,     80            # print where the device is ("virtio-pci at 00:02.0, ...")
# VT op, dev — call operation `op` of the device `dev`, a memory operand (blk_dev(%rip), or
# (%r12)). The operation finds the device in R11 (VT saves and restores R11) and may clobber
# RAX, RCX, RDX, RSI, RDI.
.macro VT op, dev
    push %r11
    lea \dev, %r11
    mov VD_OPS(%r11), %rax
    call *\op(%rax)
    pop %r11
.endm

    .code64
    .text
# vq_pick_size: EAX = the device's maximum, EDI = the size wanted; EAX = the largest power of
# two not above either (a split queue's size is a power of two). Clobbers ECX.
vq_pick_size:
    cmp %edi, %eax
    jbe 1f
    mov %edi, %eax
1:  test %eax, %eax
    jz 2f
    bsr %eax, %ecx
    mov $1, %eax
    shl %cl, %eax
2:  ret

# virtio_start: RDI = a struct vdev a probe filled in, RSI = the features the driver can use.
# Resets the device and takes it to FEATURES_OK. RAX = the features accepted (offered and
# usable), RDX = the ones offered; RAX = -1 if the device does not offer VIRTIO_F_VERSION_1 (a
# legacy-only device lays its rings out differently), -2 if it refused FEATURES_OK.
# Clobbers RCX, RSI, RDI.
virtio_start:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12                  # R12 = the device
    mov %rsi, %r13                  # R13 = what the driver can use
    VT VT_RESET, (%r12)
    mov $VS_ACKNOWLEDGE, %edi
    VT VT_SET_STATUS, (%r12)
    mov $VS_ACKNOWLEDGE | VS_DRIVER, %edi
    VT VT_SET_STATUS, (%r12)
    mov $1, %edi
    VT VT_GET_FEATURES, (%r12)
    mov %eax, %ebx
    shl $32, %rbx
    xor %edi, %edi
    VT VT_GET_FEATURES, (%r12)
    or %rax, %rbx                   # RBX = every feature offered
    mov $-1, %rax
    bt $VF_VERSION_1, %rbx
    jnc 9f
    and %rbx, %r13                  # R13 = the ones this driver uses
    xor %edi, %edi
    mov %r13d, %esi
    VT VT_SET_FEATURES, (%r12)
    mov $1, %edi
    mov %r13, %rsi
    shr $32, %rsi
    VT VT_SET_FEATURES, (%r12)
    mov $VS_ACKNOWLEDGE | VS_DRIVER | VS_FEATURES_OK, %edi
    VT VT_SET_STATUS, (%r12)
    VT VT_GET_STATUS, (%r12)        # FEATURES_OK sticks only if the device agrees
    test $VS_FEATURES_OK, %al
    mov $-2, %rax
    jz 9f
    mov %r13, %rax
9:  mov %rbx, %rdx
    pop %r13
    pop %r12
    pop %rbx
    ret

# virtio_driver_ok: RDI = a struct vdev whose queues are set up: DRIVER_OK, the device runs.
# Clobbers RAX, RCX, RDX, RSI, RDI.
virtio_driver_ok:
    push %r12
    mov %rdi, %r12
    mov $VS_ACKNOWLEDGE | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK, %edi
    VT VT_SET_STATUS, (%r12)
    pop %r12
    ret
