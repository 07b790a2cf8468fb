# virtio_mmio.S — the virtio-mmio transport (virtio 1.2 section 4.2, version 2): finding the
# device and its register window.
# Teaches: a transport is only a register map. virtio-mmio has no discovery of its own: the
# board says where the windows are (a device tree, Linux's virtio_mmio.device= option, or
# here vmscope's convention: 4 KiB windows from 0xD0000000, window i on GSI 20 + i), and the
# driver recognises a device by the magic "virt" and its DeviceID. Every register is 32
# bits; the device configuration (virtio-blk's capacity) starts at 0x100.

.set VIRTIO_MMIO_BASE,    0xD0000000
.set VIRTIO_MMIO_STRIDE,  0x1000
.set VIRTIO_MMIO_WINDOWS, 8
.set VIRTIO_MMIO_GSI,     20        # window i interrupts on GSI 20 + i (vmscope's board)
.set VIRTIO_MMIO_MAGIC,   0x74726976  # "virt"
.set VM_MAGIC,            0x000
.set VM_VERSION,          0x004
.set VM_DEVICE_ID,        0x008
.set VM_DEVICE_FEATURES,  0x010
.set VM_DEVICE_FEATURES_SEL, 0x014
.set VM_DRIVER_FEATURES,  0x020
.set VM_DRIVER_FEATURES_SEL, 0x024
.set VM_QUEUE_SEL,        0x030
.set VM_QUEUE_NUM_MAX,    0x034
.set VM_QUEUE_NUM,        0x038
.set VM_QUEUE_READY,      0x044
.set VM_QUEUE_NOTIFY,     0x050
.set VM_INTERRUPT_STATUS, 0x060
.set VM_INTERRUPT_ACK,    0x064
.set VM_STATUS,           0x070
.set VM_QUEUE_DESC,       0x080     # low dword; the high dword follows at +4
.set VM_QUEUE_DRIVER,     0x090
.set VM_QUEUE_DEVICE,     0x0A0
.set VM_CONFIG_GENERATION, 0x0FC
.set VM_CONFIG,           0x100

    .section .rodata
    .balign 8
virtio_mmio_ops:                    # the transport operations virtio.S calls (VT_*)
    .long vm_reset, 0, vm_get_status, 0, vm_set_status, 0, vm_get_features, 0
    .long vm_set_features, 0, vm_setup_queue, 0, vm_notify, 0, vm_isr, 0
    .long vm_config32, 0, vm_generation, 0

    .code64
    .text
# virtio_mmio_probe: look for a virtio-blk device in the windows. RAX = 1 and vt_base,
# disk_gsi, disk_location set if one answers (nothing is written to it yet), else RAX = 0.
# Clobbers RCX, RDX, RSI, RDI, R8.
virtio_mmio_probe:
    mov $VIRTIO_MMIO_BASE, %edi
    mov $VIRTIO_MMIO_WINDOWS * VIRTIO_MMIO_STRIDE, %esi
    call map_device
    xor %ecx, %ecx                  # ECX = the window
1:  mov %ecx, %edx
    shl $12, %edx
    add $VIRTIO_MMIO_BASE, %edx     # RDX = its base
    cmpl $VIRTIO_MMIO_MAGIC, VM_MAGIC(%rdx)
    jne 2f
    cmpl $VIRTIO_DEVICE_BLOCK, VM_DEVICE_ID(%rdx)   # 0 would be an empty slot
    je 3f
2:  inc %ecx
    cmp $VIRTIO_MMIO_WINDOWS, %ecx
    jb 1b
    xor %eax, %eax
    ret
3:  mov %rdx, vt_base(%rip)
    add $VIRTIO_MMIO_GSI, %ecx
    mov %rcx, disk_gsi(%rip)
    movl $virtio_mmio_ops, vt_ops(%rip)
    mov $1, %eax
    ret

# virtio_mmio_describe: the "where" part of the disk line.
virtio_mmio_describe:
    PRINT "virtio-mmio at 0x"
    mov vt_base(%rip), %rax
    call print_hex
    mov vt_base(%rip), %rax
    cmpl $2, VM_VERSION(%rax)
    je 1f
    PRINT " (version "              # version 1 is the legacy, page-based register layout
    mov vt_base(%rip), %rax
    mov VM_VERSION(%rax), %eax
    call print_u64
    PRINT ": not a virtio 1.x device, not supported)\n"
    EXIT EXIT_NO_DISK
1:  PRINT " gsi "
    mov disk_gsi(%rip), %rax
    jmp print_u64

# ---- the operations (virtio.S documents them); each clobbers at most RAX, RCX, RDX, RSI, RDI.
vm_reset:
    mov vt_base(%rip), %rax
    movl $0, VM_STATUS(%rax)        # writing 0 resets the device ...
1:  cmpl $0, VM_STATUS(%rax)        # ... which it has done when the status reads 0
    jne 1b
    ret
vm_get_status:
    mov vt_base(%rip), %rax
    mov VM_STATUS(%rax), %eax
    ret
vm_set_status:
    mov vt_base(%rip), %rax
    mov %edi, VM_STATUS(%rax)
    ret
vm_get_features:
    mov vt_base(%rip), %rax
    mov %edi, VM_DEVICE_FEATURES_SEL(%rax)
    mov VM_DEVICE_FEATURES(%rax), %eax
    ret
vm_set_features:
    mov vt_base(%rip), %rax
    mov %edi, VM_DRIVER_FEATURES_SEL(%rax)
    mov %esi, VM_DRIVER_FEATURES(%rax)
    ret
# vm_setup_queue: queue 0 at VQ_DESC/VQ_AVAIL/VQ_USED with EDI entries at most; EAX = the
# size set (a power of two), or 0 if the queue is missing or already in use.
vm_setup_queue:
    mov vt_base(%rip), %rdx
    movl $0, VM_QUEUE_SEL(%rdx)
    cmpl $0, VM_QUEUE_READY(%rdx)
    jne 9f
    mov VM_QUEUE_NUM_MAX(%rdx), %eax
    call vq_pick_size               # virtio.S: EAX = min(EAX, EDI) rounded down to 2^k
    test %eax, %eax
    jz 9f
    mov %eax, VM_QUEUE_NUM(%rdx)
    movl $VQ_DESC, VM_QUEUE_DESC(%rdx)
    movl $0, VM_QUEUE_DESC + 4(%rdx)
    movl $VQ_AVAIL, VM_QUEUE_DRIVER(%rdx)
    movl $0, VM_QUEUE_DRIVER + 4(%rdx)
    movl $VQ_USED, VM_QUEUE_DEVICE(%rdx)
    movl $0, VM_QUEUE_DEVICE + 4(%rdx)
    movl $1, VM_QUEUE_READY(%rdx)
    ret
9:  xor %eax, %eax
    ret
vm_notify:
    mov vt_base(%rip), %rax
    movl $0, VM_QUEUE_NOTIFY(%rax)  # the queue's index: a VM exit on KVM
    ret
# vm_isr: EAX = the interrupt status, acknowledged (the device then drops its line).
vm_isr:
    mov vt_base(%rip), %rdx
    mov VM_INTERRUPT_STATUS(%rdx), %eax
    mov %eax, VM_INTERRUPT_ACK(%rdx)
    ret
vm_config32:
    mov vt_base(%rip), %rax
    mov VM_CONFIG(%rax, %rdi), %eax
    ret
vm_generation:
    mov vt_base(%rip), %rax
    mov VM_CONFIG_GENERATION(%rax), %eax
    ret
