# virtio_pci.S — the modern virtio-pci transport (virtio 1.2 section 4.1): the device found by
# its PCI IDs, its register blocks found through vendor capabilities.
# Teaches: on a discoverable bus the driver needs no board convention. It scans for vendor
# 0x1AF4 device 0x1040 + 2 (a modern virtio-blk), then walks the capability list: each
# virtio capability (ID 9) names a structure — common configuration, notifications, ISR,
# device configuration — by BAR number, offset and length. The driver must use the BARs
# wherever firmware put them: vmscope places BAR 0 at 0xE0000000, SeaBIOS under QEMU puts
# QEMU's BAR 4 wherever its allocator says. The interrupt is INTx, a level on the GSI the
# interrupt line register names; reading the ISR byte acknowledges it.

.set VIRTIO_PCI_IDS,      0x10421AF4    # device 0x1042 (0x1040 + block), vendor 0x1AF4
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
    .long vp_config32, 0, vp_generation, 0

    .code64
    .text
# virtio_pci_probe: RAX = 1 if bus 0 has a modern virtio-blk function whose four structures
# were found and mapped (vt_base = common configuration, vpci_notify, vpci_isr, vpci_device,
# disk_gsi set); else 0. Nothing is written to the device but its command register.
# Clobbers RCX, RDX, RSI, RDI, R8-R11.
virtio_pci_probe:
    push %rbx
    push %r12
    mov $VIRTIO_PCI_IDS, %esi
    call pci_find
    cmp $-1, %eax
    je 8f
    mov %eax, %ebx                  # EBX = the function's config address
    mov %rax, vpci_cfg(%rip)
    movq $0, vt_base(%rip)
    movq $0, vpci_notify(%rip)
    movq $0, vpci_isr(%rip)
    movq $0, vpci_device(%rip)
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
    lea vt_base(%rip), %r10         # R10 = where this structure's address goes
    cmp $VPCI_NOTIFY_CFG, %r9d
    jne 2f
    lea vpci_notify(%rip), %r10
2:  cmp $VPCI_ISR_CFG, %r9d
    jne 2f
    lea vpci_isr(%rip), %r10
2:  cmp $VPCI_DEVICE_CFG, %r9d
    jne 2f
    lea vpci_device(%rip), %r10
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
    mov %rax, vpci_notify_mult(%rip)
4:  lea 1(%rbx, %r12), %edi         # cap_next
    call pci_read8
    mov %eax, %r12d
    jmp 1b
5:  cmpq $0, vt_base(%rip)          # all four found?
    je 8f
    cmpq $0, vpci_notify(%rip)
    je 8f
    cmpq $0, vpci_isr(%rip)
    je 8f
    cmpq $0, vpci_device(%rip)
    je 8f
    mov %ebx, %edi
    call pci_enable_device
    lea PCI_INT_LINE(%rbx), %edi
    call pci_read8
    mov %rax, disk_gsi(%rip)
    movl $virtio_pci_ops, vt_ops(%rip)
    mov $1, %eax
    jmp 9f
7:  PRINT "disk: a virtio-pci structure lies at 0x"
    mov %r11, %rax
    call print_hex
    PRINT ", outside the 3-4 GiB this kernel maps for devices\n"
8:  xor %eax, %eax
9:  pop %r12
    pop %rbx
    ret

# virtio_pci_describe: the "where" part of the disk line.
virtio_pci_describe:
    PRINT "virtio-pci at 00:"
    mov vpci_cfg(%rip), %rax
    shr $11, %eax
    and $31, %eax
    shl $56, %rax                   # the slot as two hex digits
    mov $2, %esi
    call print_hex_digits
    PRINT ".0, registers at 0x"
    mov vt_base(%rip), %rax
    call print_hex
    PRINT ", gsi "
    mov disk_gsi(%rip), %rax
    jmp print_u64

# ---- the operations ---------------------------------------------------------------------
vp_reset:
    mov vt_base(%rip), %rax
    movb $0, VC_DEVICE_STATUS(%rax)
1:  cmpb $0, VC_DEVICE_STATUS(%rax)  # the reset is done when the status reads 0
    jne 1b
    ret
vp_get_status:
    mov vt_base(%rip), %rax
    movzbl VC_DEVICE_STATUS(%rax), %eax
    ret
vp_set_status:
    mov vt_base(%rip), %rax
    mov %dil, VC_DEVICE_STATUS(%rax)
    ret
vp_get_features:
    mov vt_base(%rip), %rax
    mov %edi, VC_DEVICE_FEATURE_SELECT(%rax)
    mov VC_DEVICE_FEATURE(%rax), %eax
    ret
vp_set_features:
    mov vt_base(%rip), %rax
    mov %edi, VC_DRIVER_FEATURE_SELECT(%rax)
    mov %esi, VC_DRIVER_FEATURE(%rax)
    ret
vp_setup_queue:
    mov vt_base(%rip), %rdx
    movw $0, VC_QUEUE_SELECT(%rdx)
    cmpw $0, VC_QUEUE_ENABLE(%rdx)
    jne 9f
    movzwl VC_QUEUE_SIZE(%rdx), %eax    # after a reset: the largest size the device takes
    call vq_pick_size
    test %eax, %eax
    jz 9f
    mov %ax, VC_QUEUE_SIZE(%rdx)
    movl $VQ_DESC, VC_QUEUE_DESC(%rdx)
    movl $0, VC_QUEUE_DESC + 4(%rdx)
    movl $VQ_AVAIL, VC_QUEUE_DRIVER(%rdx)
    movl $0, VC_QUEUE_DRIVER + 4(%rdx)
    movl $VQ_USED, VC_QUEUE_DEVICE(%rdx)
    movl $0, VC_QUEUE_DEVICE + 4(%rdx)
    movzwl VC_QUEUE_NOTIFY_OFF(%rdx), %ecx  # queue 0's doorbell: notify + off × multiplier
    imul vpci_notify_mult(%rip), %rcx
    add vpci_notify(%rip), %rcx
    mov %rcx, vpci_doorbell(%rip)
    movw $1, VC_QUEUE_ENABLE(%rdx)
    ret
9:  xor %eax, %eax
    ret
vp_notify:
    mov vpci_doorbell(%rip), %rax
    movw $0, (%rax)                 # the queue's index: one write, one VM exit on KVM
    ret
# vp_isr: EAX = the ISR status; reading it clears it and drops the INTx line.
vp_isr:
    mov vpci_isr(%rip), %rax
    movzbl (%rax), %eax
    ret
vp_config32:
    mov vpci_device(%rip), %rax
    mov (%rax, %rdi), %eax
    ret
vp_generation:
    mov vt_base(%rip), %rax
    movzbl VC_CONFIG_GENERATION(%rax), %eax
    ret
