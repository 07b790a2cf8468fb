# virtio_mmio.S — the virtio-mmio transport (virtio 1.2 section 4.2, version 2): finding a
# device and its register window, and the transport operations virtio.S calls.
# Teaches: a transport is only a register map. virtio-mmio has no discovery of its own: the
# board says where the windows are (a device tree, Linux's virtio_mmio.device= option, or
# here vmscope's convention: 4 KiB windows from 0xD0000000, window i on GSI 20 + i), and the
# driver recognises a device by the magic "virt" and its DeviceID (2 a disk, 3 a console).
# Every register is 32 bits; the device configuration (virtio-blk's capacity) starts at 0x100.

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
    .long vm_config32, 0, vm_generation, 0, vm_describe, 0

    .code64
    .text
# virtio_mmio_probe: EDI = a virtio device type, RSI = a struct vdev. Looks for a device of
# that type in the windows: RAX = 1 and the vdev filled in (VD_OPS, VD_BASE, VD_GSI) if one
# answers (nothing is written to it yet), else RAX = 0. Clobbers RCX, RDX, RSI, RDI, R8.
virtio_mmio_probe:
    push %rbx
    push %r12
    mov %edi, %ebx                  # EBX = the type
    mov %rsi, %r12                  # R12 = the vdev
    mov $VIRTIO_MMIO_BASE, %edi
    mov $VIRTIO_MMIO_WINDOWS * VIRTIO_MMIO_STRIDE, %esi
    call map_device
    xor %ecx, %ecx                  # ECX = the window
1:  mov %ecx, %edx
    shl $12, %edx
    add $VIRTIO_MMIO_BASE, %edx     # RDX = its base
    cmpl $VIRTIO_MMIO_MAGIC, VM_MAGIC(%rdx)
    jne 2f
    cmp %ebx, VM_DEVICE_ID(%rdx)    # 0 would be an empty slot
    je 3f
2:  inc %ecx
    cmp $VIRTIO_MMIO_WINDOWS, %ecx
    jb 1b
    xor %eax, %eax
    jmp 9f
3:  mov %rdx, VD_BASE(%r12)
    add $VIRTIO_MMIO_GSI, %ecx
    mov %rcx, VD_GSI(%r12)
    lea virtio_mmio_ops(%rip), %rax
    mov %rax, VD_OPS(%r12)
    mov $1, %eax
9:  pop %r12
    pop %rbx
    ret

# ---- the operations (virtio.S documents them): R11 = the vdev; each clobbers at most RAX,
# RCX, RDX, RSI, RDI.
# vm_describe: "virtio-mmio at 0x... gsi N"; a window that is not version 2 stops the kernel.
vm_describe:
    push %r8
    PRINT "virtio-mmio at 0x"
    mov VD_BASE(%r11), %rax
    call print_hex
    mov VD_BASE(%r11), %rax
    cmpl $2, VM_VERSION(%rax)
    je 1f
    PRINT " (version "              # version 1 is the legacy, page-based register layout
    mov VD_BASE(%r11), %rax
    mov VM_VERSION(%rax), %eax
    call print_u64
    PRINT ": not a virtio 1.x device, not supported)\n"
    EXIT EXIT_NO_DISK
1:  PRINT " gsi "
    mov VD_GSI(%r11), %rax
    call print_u64
    pop %r8
    ret
vm_reset:
    mov VD_BASE(%r11), %rax
    movl $0, VM_STATUS(%rax)        # writing 0 resets the device ...
1:  cmpl $0, VM_STATUS(%rax)        # ... which it has done when the status reads 0
    jne 1b
    ret
vm_get_status:
    mov VD_BASE(%r11), %rax
    mov VM_STATUS(%rax), %eax
    ret
vm_set_status:
    mov VD_BASE(%r11), %rax
    mov %edi, VM_STATUS(%rax)
    ret
vm_get_features:
    mov VD_BASE(%r11), %rax
    mov %edi, VM_DEVICE_FEATURES_SEL(%rax)
    mov VM_DEVICE_FEATURES(%rax), %eax
    ret
vm_set_features:
    mov VD_BASE(%r11), %rax
    mov %edi, VM_DRIVER_FEATURES_SEL(%rax)
    mov %esi, VM_DRIVER_FEATURES(%rax)
    ret
# vm_setup_queue: the queue RSI names, with EDI entries at most, at its Q_DESC/Q_AVAIL/Q_USED;
# EAX = the size set (a power of two, also in Q_SIZE), or 0 if the queue is missing or
# already in use.
vm_setup_queue:
    mov VD_BASE(%r11), %rdx
    mov Q_INDEX(%rsi), %eax
    mov %eax, VM_QUEUE_SEL(%rdx)
    cmpl $0, VM_QUEUE_READY(%rdx)
    jne 9f
    mov VM_QUEUE_NUM_MAX(%rdx), %eax
    call vq_pick_size               # virtio.S: EAX = min(EAX, EDI) rounded down to 2^k
    test %eax, %eax
    jz 9f
    mov %eax, VM_QUEUE_NUM(%rdx)
    mov %rax, Q_SIZE(%rsi)
    mov Q_DESC(%rsi), %rcx
    mov %ecx, VM_QUEUE_DESC(%rdx)
    shr $32, %rcx
    mov %ecx, VM_QUEUE_DESC + 4(%rdx)
    mov Q_AVAIL(%rsi), %rcx
    mov %ecx, VM_QUEUE_DRIVER(%rdx)
    shr $32, %rcx
    mov %ecx, VM_QUEUE_DRIVER + 4(%rdx)
    mov Q_USED(%rsi), %rcx
    mov %ecx, VM_QUEUE_DEVICE(%rdx)
    shr $32, %rcx
    mov %ecx, VM_QUEUE_DEVICE + 4(%rdx)
    movl $1, VM_QUEUE_READY(%rdx)
    ret
9:  xor %eax, %eax
    ret
vm_notify:
    mov VD_BASE(%r11), %rax
    mov Q_INDEX(%rsi), %ecx
    mov %ecx, VM_QUEUE_NOTIFY(%rax) # the queue's index: a VM exit on KVM
    ret
# vm_isr: EAX = the interrupt status, acknowledged (the device then drops its line).
vm_isr:
    mov VD_BASE(%r11), %rdx
    mov VM_INTERRUPT_STATUS(%rdx), %eax
    mov %eax, VM_INTERRUPT_ACK(%rdx)
    ret
vm_config32:
    mov VD_BASE(%r11), %rax
    mov VM_CONFIG(%rax, %rdi), %eax
    ret
vm_generation:
    mov VD_BASE(%r11), %rax
    mov VM_CONFIG_GENERATION(%rax), %eax
    ret
