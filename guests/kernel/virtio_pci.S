# virtio_pci.S — the modern virtio-pci transport (virtio 1.2 section 4.1): a device found by
# its PCI IDs, its register blocks found through vendor capabilities, the operations.
# Teaches: on a discoverable bus the driver needs no board convention. It scans for vendor
# 0x1AF4 device 0x1040 + type (0x1042 a disk, 0x1043 a console), then walks the capability
# list: each virtio capability (ID 9) names a structure — common configuration,
# notifications, ISR, device configuration — by BAR number, offset and length. The driver
# must use the BARs wherever firmware put them: vmscope places BAR 0 at 0xE0000000, SeaBIOS
# under QEMU puts QEMU's BAR 4 wherever its allocator says. The interrupt is INTx, a level on the GSI the
# interrupt line register names; reading the ISR byte acknowledges it.

.set PCI_CAP_VENDOR,      0x09
.set VPCI_CAP_CFG_TYPE,   3             # struct virtio_pci_cap: cap_vndr, cap_next, cap_len,
.set VPCI_CAP_BAR,        4             # cfg_type, bar, id, padding[2], offset, length
.set VPCI_CAP_OFFSET,     8
.set VPCI_CAP_LENGTH,     12
.set VPCI_CAP_NOTIFY_MULT, 16           # the notify capability's notify_off_multiplier
.set VPCI_COMMON_CFG,     1
.set VPCI_NOTIFY_CFG,     2
.set VPCI_ISR_CFG,        3
.set VPCI_DEVICE_CFG,     4
# struct virtio_pci_common_cfg
.set VC_DEVICE_FEATURE_SELECT, 0x00
.set VC_DEVICE_FEATURE,   0x04
.set VC_DRIVER_FEATURE_SELECT, 0x08
.set VC_DRIVER_FEATURE,   0x0C
.set VC_DEVICE_STATUS,    0x14          # 8 bits
.set VC_CONFIG_GENERATION, 0x15         # 8 bits
.set VC_QUEUE_SELECT,     0x16          # 16 bits, like the queue fields that follow
.set VC_QUEUE_SIZE,       0x18
.set VC_QUEUE_ENABLE,     0x1C
.set VC_QUEUE_NOTIFY_OFF, 0x1E
.set VC_QUEUE_DESC,       0x20          # 64 bits, written as two dwords
.set VC_QUEUE_DRIVER,     0x28
.set VC_QUEUE_DEVICE,     0x30

    .section .rodata
    .balign 8
virtio_pci_ops:
    .long vp_reset, 0, vp_get_status, 0, vp_set_status, 0, vp_get_features, 0
    .long vp_set_features, 0, vp_setup_queue, 0, vp_notify, 0, vp_isr, 0
    .long vp_config32, 0, vp_generation, 0, vp_describe, 0

    .code64
    .text
# virtio_pci_probe: EDI = the PCI IDs to look for (device << 16 | vendor), RSI = a struct
# vdev. RAX = 1 if bus 0 has such a function and its four structures were found and mapped
# (the vdev filled in: common configuration in VD_BASE, VD_NOTIFY, VD_ISR, VD_DEVCFG, the
# interrupt line in VD_GSI); else 0. Nothing is written to the device but its command
# register. Clobbers RCX, RDX, RSI, RDI, R8-R11.
virtio_pci_probe:
    push %rbx
    push %r12
    push %r13
    mov %rsi, %r13                  # R13 = the vdev
    mov %edi, %esi
    call pci_find
    cmp $-1, %eax
    je 8f
    mov %eax, %ebx                  # EBX = the function's config address
    mov %rax, VD_PCI_CFG(%r13)
    movq $0, VD_BASE(%r13)
    movq $0, VD_NOTIFY(%r13)
    movq $0, VD_ISR(%r13)
    movq $0, VD_DEVCFG(%r13)
    lea PCI_STATUS(%rbx), %edi
    call pci_read16
    test $PCI_STATUS_CAP_LIST, %al
    jz 8f
    lea PCI_CAP_PTR(%rbx), %edi
    call pci_read8
    mov %eax, %r12d                 # R12 = the capability being looked at
1:  and $0xFC, %r12d
    jz 5f                           # the end of the list
    lea (%rbx, %r12), %edi
    call pci_read8
    cmp $PCI_CAP_VENDOR, %al
    jne 4f
    lea VPCI_CAP_CFG_TYPE(%rbx, %r12), %edi
    call pci_read8
    mov %eax, %r9d                  # R9 = cfg_type
    cmp $VPCI_DEVICE_CFG, %r9d
    ja 4f                           # (5 = the PCI config access window: not needed)
    test %r9d, %r9d
    jz 4f
    lea VD_BASE(%r13), %r10         # R10 = where this structure's address goes
    cmp $VPCI_NOTIFY_CFG, %r9d
    jne 2f
    lea VD_NOTIFY(%r13), %r10
2:  cmp $VPCI_ISR_CFG, %r9d
    jne 2f
    lea VD_ISR(%r13), %r10
2:  cmp $VPCI_DEVICE_CFG, %r9d
    jne 2f
    lea VD_DEVCFG(%r13), %r10
2:  cmpq $0, (%r10)
    jne 4f                          # the first capability of each type is the one to use
    lea VPCI_CAP_BAR(%rbx, %r12), %edi
    call pci_read8
    mov %eax, %esi
    mov %ebx, %edi
    call pci_bar_address            # RAX = where the BAR is
    test %rax, %rax
    jz 4f
    mov %rax, %r11
    lea VPCI_CAP_OFFSET(%rbx, %r12), %edi
    call pci_read32
    add %rax, %r11                  # R11 = the structure's address
    lea VPCI_CAP_LENGTH(%rbx, %r12), %edi
    call pci_read32
    mov %r11, %rdi
    mov %eax, %esi
    call map_device
    test %rax, %rax
    jnz 7f
    mov %r11, (%r10)
    cmp $VPCI_NOTIFY_CFG, %r9d
    jne 4f
    lea VPCI_CAP_NOTIFY_MULT(%rbx, %r12), %edi
    call pci_read32
    mov %rax, VD_NOTIFY_MULT(%r13)
4:  lea 1(%rbx, %r12), %edi         # cap_next
    call pci_read8
    mov %eax, %r12d
    jmp 1b
5:  cmpq $0, VD_BASE(%r13)          # all four found?
    je 8f
    cmpq $0, VD_NOTIFY(%r13)
    je 8f
    cmpq $0, VD_ISR(%r13)
    je 8f
    cmpq $0, VD_DEVCFG(%r13)
    je 8f
    mov %ebx, %edi
    call pci_enable_device
    lea PCI_INT_LINE(%rbx), %edi
    call pci_read8
    mov %rax, VD_GSI(%r13)
    lea virtio_pci_ops(%rip), %rax
    mov %rax, VD_OPS(%r13)
    mov $1, %eax
    jmp 9f
7:  PRINT "virtio-pci: a structure lies at 0x"
    mov %r11, %rax
    call print_hex
    PRINT ", outside the 3-4 GiB this kernel maps for devices\n"
8:  xor %eax, %eax
9:  pop %r13
    pop %r12
    pop %rbx
    ret

# ---- the operations (virtio.S documents them): R11 = the vdev ----------------------------
# vp_describe: "virtio-pci at 00:SS.0, registers at 0x..., gsi N".
vp_describe:
    push %r8
    PRINT "virtio-pci at 00:"
    mov VD_PCI_CFG(%r11), %rax
    shr $11, %eax
    and $31, %eax
    shl $56, %rax                   # the slot as two hex digits
    mov $2, %esi
    call print_hex_digits
    PRINT ".0, registers at 0x"
    mov VD_BASE(%r11), %rax
    call print_hex
    PRINT ", gsi "
    mov VD_GSI(%r11), %rax
    call print_u64
    pop %r8
    ret
vp_reset:
    mov VD_BASE(%r11), %rax
    movb $0, VC_DEVICE_STATUS(%rax)
1:  cmpb $0, VC_DEVICE_STATUS(%rax)  # the reset is done when the status reads 0
    jne 1b
    ret
vp_get_status:
    mov VD_BASE(%r11), %rax
    movzbl VC_DEVICE_STATUS(%rax), %eax
    ret
vp_set_status:
    mov VD_BASE(%r11), %rax
    mov %dil, VC_DEVICE_STATUS(%rax)
    ret
vp_get_features:
    mov VD_BASE(%r11), %rax
    mov %edi, VC_DEVICE_FEATURE_SELECT(%rax)
    mov VC_DEVICE_FEATURE(%rax), %eax
    ret
vp_set_features:
    mov VD_BASE(%r11), %rax
    mov %edi, VC_DRIVER_FEATURE_SELECT(%rax)
    mov %esi, VC_DRIVER_FEATURE(%rax)
    ret
# vp_setup_queue: the queue RSI names (see vm_setup_queue); also its doorbell, notify +
# queue_notify_off × notify_off_multiplier, in Q_DOORBELL.
vp_setup_queue:
    mov VD_BASE(%r11), %rdx
    mov Q_INDEX(%rsi), %eax
    mov %ax, VC_QUEUE_SELECT(%rdx)
    cmpw $0, VC_QUEUE_ENABLE(%rdx)
    jne 9f
    movzwl VC_QUEUE_SIZE(%rdx), %eax    # after a reset: the largest size the device takes
    call vq_pick_size
    test %eax, %eax
    jz 9f
    mov %ax, VC_QUEUE_SIZE(%rdx)
    mov %rax, Q_SIZE(%rsi)
    mov Q_DESC(%rsi), %rcx
    mov %ecx, VC_QUEUE_DESC(%rdx)
    shr $32, %rcx
    mov %ecx, VC_QUEUE_DESC + 4(%rdx)
    mov Q_AVAIL(%rsi), %rcx
    mov %ecx, VC_QUEUE_DRIVER(%rdx)
    shr $32, %rcx
    mov %ecx, VC_QUEUE_DRIVER + 4(%rdx)
    mov Q_USED(%rsi), %rcx
    mov %ecx, VC_QUEUE_DEVICE(%rdx)
    shr $32, %rcx
    mov %ecx, VC_QUEUE_DEVICE + 4(%rdx)
    movzwl VC_QUEUE_NOTIFY_OFF(%rdx), %ecx
    imul VD_NOTIFY_MULT(%r11), %rcx
    add VD_NOTIFY(%r11), %rcx
    mov %rcx, Q_DOORBELL(%rsi)
    movw $1, VC_QUEUE_ENABLE(%rdx)
    ret
9:  xor %eax, %eax
    ret
vp_notify:
    mov Q_DOORBELL(%rsi), %rax
    mov Q_INDEX(%rsi), %ecx
    mov %cx, (%rax)                 # the queue's index: one write, one VM exit on KVM
    ret
# vp_isr: EAX = the ISR status; reading it clears it and drops the INTx line.
vp_isr:
    mov VD_ISR(%r11), %rax
    movzbl (%rax), %eax
    ret
vp_config32:
    mov VD_DEVCFG(%r11), %rax
    mov (%rax, %rdi), %eax
    ret
vp_generation:
    mov VD_BASE(%r11), %rax
    movzbl VC_CONFIG_GENERATION(%rax), %eax
    ret
