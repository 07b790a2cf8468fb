# virtio_net.S — a virtio-net driver (virtio 1.2 section 5.1), polled, with an interrupt only
# while the receiver sleeps, for the network stack in net.S. Teaches: a NIC as two virtqueues. The receiveq (queue 0) holds buffers the device may
# write: the driver keeps it full, and each used element is one frame behind a 12-byte
# virtio_net_hdr_v1 (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
# num_buffers). The transmitq (queue 1) takes buffers the device reads: the same header, all
# zero — no checksum or segmentation offload asked for — then the frame. What makes
# paravirtual networking cheap is batching: udp-send fills every free transmit descriptor
# before it rings the doorbell once, and it skips even that while the device says (used ring
# flag VIRTQ_USED_F_NO_NOTIFY) that it is still working through the ring. One exit, many frames.
#
# Features: VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC (the MAC in the device configuration),
# nothing else (an offered VIRTIO_NET_F_STATUS is left alone: the link counts as up). Both
# queues carry VIRTQ_AVAIL_F_NO_INTERRUPT: the driver polls the used indices. Only while
# net_receive sleeps is the receiveq's flag clear (NIC_RX_ARM): the device then interrupts
# for the next frame, on the function's INTx line (VD_GSI) through the IOAPIC. Arming and
# disarming are stores to the ring in RAM — the device reads the flag when it has used a
# buffer — so sleeping and waking cost no exit beyond the interrupt itself (and the ISR read
# that acknowledges it). Compare rtl8139.S, where both are register writes.
# Descriptor i of each queue always points at buffer i (NET_RX_BUFS / NET_TX_BUFS + i × 2 KiB);
# receive buffers go back in the order they came, free transmit descriptors sit on a stack.

.set VIRTIO_DEVICE_NET,  1
.set VIRTIO_PCI_IDS_NET, ((VIRTIO_PCI_MODERN + VIRTIO_DEVICE_NET) << 16) | VIRTIO_PCI_VENDOR
.set VNET_F_MAC,         5
.set VNET_HDR,           12         # virtio_net_hdr_v1: VERSION_1 always has num_buffers
.set VNET_RX_LEN,        VNET_HDR + 1514    # one whole frame per buffer (no MRG_RXBUF)
.set VNET_RECEIVEQ,      0
.set VNET_TRANSMITQ,     1
.set VNET_TX_TICKS,      100        # 1 s (timer ticks) for the device to take a frame

    .section .rodata
    .balign 8
vnet_ops:                           # the NIC operations (net.S: NIC_*)
    .long vnet_tx_buf, 0, vnet_tx_send, 0, vnet_tx_kick, 0, vnet_tx_drain, 0
    .long vnet_rx_poll, 0, vnet_rx_done, 0, vnet_describe, 0
    .long vnet_rx_arm, 0, vnet_rx_disarm, 0

    .data
    .balign 8
vnet_rxq:   .quad VNET_RECEIVEQ, NET_RXQ_DESC, NET_RXQ_AVAIL, NET_RXQ_USED, 0, 0, 0, 0
vnet_txq:   .quad VNET_TRANSMITQ, NET_TXQ_DESC, NET_TXQ_AVAIL, NET_TXQ_USED, 0, 0, 0, 0

    .bss
    .balign 8
vnet_dev:           .skip VD_SIZE
vnet_tx_free_count: .skip 8         # transmit descriptors on the free stack
vnet_tx_cur:        .skip 8         # the descriptor vnet_tx_buf handed out
vnet_tx_pending:    .skip 8         # frames published since the last doorbell
vnet_rx_cur:        .skip 8         # the descriptor vnet_rx_poll handed out
vnet_tx_free:       .skip 2 * 256   # the free stack: descriptor numbers

    .code64
    .text
# vnet_probe: find a virtio-net (PCI 1af4:1041, then the virtio-mmio windows, device ID 1) and
# bring it up: the handshake, both queues, the MAC into net_mac, every receive buffer given
# to the device, the interrupt line routed (net_irq_route), DRIVER_OK. RAX = 1 (and nic_ops =
# vnet_ops) if there is one, 0 if not; a device that refuses stops the kernel with
# EXIT_NET_ERROR. Keeps RBX, RBP, R12-R15.
vnet_probe:
    mov $VIRTIO_PCI_IDS_NET, %edi
    lea vnet_dev(%rip), %rsi
    call virtio_pci_probe
    test %eax, %eax
    jnz 1f
    mov $VIRTIO_DEVICE_NET, %edi
    lea vnet_dev(%rip), %rsi
    call virtio_mmio_probe
    test %eax, %eax
    jz 9f
1:  lea vnet_dev(%rip), %rdi
    movabs $(1 << VF_VERSION_1) | (1 << VNET_F_MAC), %rsi
    call virtio_start               # virtio.S: reset ... FEATURES_OK
    test %rax, %rax
    js 7f
    bt $VNET_F_MAC, %rax
    jnc 6f
    mov $NET_RXQ_DESC, %edi         # both queues empty: flags 0, indices 0
    mov $(NET_RTL_RX - NET_RXQ_DESC) / 8, %ecx
    xor %eax, %eax
    rep stosq
    movw $VIRTQ_AVAIL_F_NO_INTERRUPT, NET_RXQ_AVAIL   # the driver polls: no interrupts
    movw $VIRTQ_AVAIL_F_NO_INTERRUPT, NET_TXQ_AVAIL
    mov $NET_QUEUE_WANT, %edi
    lea vnet_rxq(%rip), %rsi
    VT VT_SETUP_QUEUE, vnet_dev(%rip)
    test %eax, %eax
    jz 5f
    mov $NET_QUEUE_WANT, %edi
    lea vnet_txq(%rip), %rsi
    VT VT_SETUP_QUEUE, vnet_dev(%rip)
    test %eax, %eax
    jz 5f
    xor %edi, %edi                  # config: mac[6] at 0, then status (unused)
    VT VT_CONFIG32, vnet_dev(%rip)
    mov %eax, net_mac(%rip)
    mov $4, %edi
    VT VT_CONFIG32, vnet_dev(%rip)
    mov %ax, net_mac + 4(%rip)
    # The receiveq: descriptor i = buffer i, device-writable; all of them available at once.
    mov vnet_rxq + Q_SIZE(%rip), %rcx
    xor %edx, %edx
2:  mov %rdx, %rax
    shl $11, %rax
    add $NET_RX_BUFS, %rax
    mov %rdx, %rdi
    shl $4, %rdi
    mov %rax, NET_RXQ_DESC(%rdi)
    movl $VNET_RX_LEN, NET_RXQ_DESC + 8(%rdi)
    movl $VIRTQ_DESC_F_WRITE, NET_RXQ_DESC + 12(%rdi)   # flags; next = 0
    mov %dx, NET_RXQ_AVAIL + 4(, %rdx, 2)
    inc %edx
    cmp %rcx, %rdx
    jb 2b
    mov %rcx, vnet_rxq + Q_AVAIL_IDX(%rip)
    movq $0, vnet_rxq + Q_USED_IDX(%rip)
    mov %cx, NET_RXQ_AVAIL + 2
    # The transmitq: descriptor i = transmit buffer i, read by the device; all free.
    mov vnet_txq + Q_SIZE(%rip), %rcx
    xor %edx, %edx
3:  mov %rdx, %rax
    shl $11, %rax
    add $NET_TX_BUFS, %rax
    mov %rdx, %rdi
    shl $4, %rdi
    mov %rax, NET_TXQ_DESC(%rdi)    # (length at each send; flags 0, next 0)
    lea vnet_tx_free(%rip), %rax
    mov %dx, (%rax, %rdx, 2)
    inc %edx
    cmp %rcx, %rdx
    jb 3b
    mov %rcx, vnet_tx_free_count(%rip)
    movq $0, vnet_txq + Q_AVAIL_IDX(%rip)
    movq $0, vnet_txq + Q_USED_IDX(%rip)
    movq $0, vnet_tx_pending(%rip)
    mov vnet_dev + VD_GSI(%rip), %rdi   # the interrupt: GSI -> IOAPIC -> VECTOR_NET, level
    mov $vnet_interrupt, %esi
    call net_irq_route
    lea vnet_dev(%rip), %rdi
    call virtio_driver_ok
    mfence
    lea vnet_rxq(%rip), %rsi
    VT VT_NOTIFY, vnet_dev(%rip)    # "the receive buffers are there"
    lea vnet_ops(%rip), %rax
    mov %rax, nic_ops(%rip)
    mov $1, %eax
    ret
9:  xor %eax, %eax
    ret
7:  PRINT "net: the virtio-net refused VIRTIO_F_VERSION_1\n"
    EXIT EXIT_NET_ERROR
6:  PRINT "net: the virtio-net does not offer VIRTIO_NET_F_MAC: no address to use\n"
    EXIT EXIT_NET_ERROR
5:  PRINT "net: the virtio-net has no usable receiveq or transmitq\n"
    EXIT EXIT_NET_ERROR

# ---- the NIC operations (net.S documents them); each clobbers at most RAX, RCX, RDX, RSI,
# RDI, R8-R11 ---------------------------------------------------------------------------------
vnet_describe:
    PRINT "virtio-net, "
    VT VT_DESCRIBE, vnet_dev(%rip)
    ret

# vnet_tx_buf: RAX = where the next frame goes: a free transmit buffer after its header
# (zeroed). With none free, ring the doorbell for what is waiting and take back what the
# device has used, waiting up to VNET_TX_TICKS.
vnet_tx_buf:
    cmpq $0, vnet_tx_free_count(%rip)
    jne 2f
    call vnet_tx_reclaim
    cmpq $0, vnet_tx_free_count(%rip)
    jne 2f
    call vnet_tx_kick               # the whole ring is out: one doorbell for the batch
    mov ticks(%rip), %r8
    add $VNET_TX_TICKS, %r8
1:  pause
    call vnet_tx_reclaim
    cmpq $0, vnet_tx_free_count(%rip)
    jne 2f
    cmp %r8, ticks(%rip)
    jb 1b
    jmp vnet_tx_stuck
2:  decq vnet_tx_free_count(%rip)   # pop a descriptor
    mov vnet_tx_free_count(%rip), %rax
    lea vnet_tx_free(%rip), %rdx
    movzwl (%rdx, %rax, 2), %eax
    mov %rax, vnet_tx_cur(%rip)
    shl $11, %rax
    add $NET_TX_BUFS, %rax
    movq $0, (%rax)                 # the header: no offloads (flags, gso_type, hdr_len,
    movl $0, 8(%rax)                # gso_size, csum_start, csum_offset, num_buffers all 0)
    add $VNET_HDR, %rax
    ret

# vnet_tx_send: ECX = the length of the frame in the buffer vnet_tx_buf gave. Published in
# the available ring at once (a device still busy with the ring takes it without a doorbell);
# the doorbell waits for vnet_tx_kick.
vnet_tx_send:
    mov vnet_tx_cur(%rip), %rax
    mov %rax, %rdx
    shl $4, %rdx
    add $VNET_HDR, %ecx
    mov %ecx, NET_TXQ_DESC + 8(%rdx)    # header + frame
    mov vnet_txq + Q_AVAIL_IDX(%rip), %rcx
    mov vnet_txq + Q_SIZE(%rip), %rdx
    dec %rdx
    and %rcx, %rdx
    mov %ax, NET_TXQ_AVAIL + 4(, %rdx, 2)   # avail.ring[idx mod size] = the descriptor
    inc %rcx
    mov %rcx, vnet_txq + Q_AVAIL_IDX(%rip)
    mov %cx, NET_TXQ_AVAIL + 2      # publish it (x86 keeps the stores in order)
    incq vnet_tx_pending(%rip)
    ret

# vnet_tx_kick: one doorbell for every frame published since the last — unless the device has
# set VIRTQ_USED_F_NO_NOTIFY: it is still taking frames and will see the new index itself.
# The index must be out before the flag is read (MFENCE), or both sides could miss each other.
vnet_tx_kick:
    cmpq $0, vnet_tx_pending(%rip)
    je 9f
    movq $0, vnet_tx_pending(%rip)
    mfence
    testw $VIRTQ_USED_F_NO_NOTIFY, NET_TXQ_USED
    jnz 9f
    lea vnet_txq(%rip), %rsi
    VT VT_NOTIFY, vnet_dev(%rip)
9:  ret

# vnet_tx_drain: the doorbell, then wait until every transmit descriptor is back.
vnet_tx_drain:
    call vnet_tx_kick
    mov ticks(%rip), %r8
    add $VNET_TX_TICKS, %r8
1:  call vnet_tx_reclaim
    mov vnet_tx_free_count(%rip), %rax
    cmp vnet_txq + Q_SIZE(%rip), %rax
    je 9f
    pause
    cmp %r8, ticks(%rip)
    jb 1b
    jmp vnet_tx_stuck
9:  ret

# vnet_tx_reclaim: every used element the device added since the last look puts its
# descriptor back on the free stack. Clobbers RAX, RCX, RDX, R9, R10.
vnet_tx_reclaim:
    mov vnet_txq + Q_USED_IDX(%rip), %rcx
    mov vnet_txq + Q_SIZE(%rip), %r9
1:  movzwl NET_TXQ_USED + 2, %eax   # the device's used index
    cmp %cx, %ax
    je 9f
    lea -1(%r9), %rdx
    and %rcx, %rdx
    mov NET_TXQ_USED + 4(, %rdx, 8), %eax   # used.ring[..].id: the descriptor
    cmp %r9, %rax
    jae vnet_bad_id
    mov vnet_tx_free_count(%rip), %rdx
    lea vnet_tx_free(%rip), %r10
    mov %ax, (%r10, %rdx, 2)
    incq vnet_tx_free_count(%rip)
    inc %rcx
    jmp 1b
9:  mov %rcx, vnet_txq + Q_USED_IDX(%rip)
    ret

# vnet_rx_poll: RAX = the next received frame (after its header) and ECX = its length, or
# RAX = 0 when the device has written nothing new.
vnet_rx_poll:
    mov vnet_rxq + Q_USED_IDX(%rip), %rcx
    movzwl NET_RXQ_USED + 2, %eax
    cmp %cx, %ax
    je 8f
    mov vnet_rxq + Q_SIZE(%rip), %rdx
    dec %rdx
    and %rcx, %rdx
    mov NET_RXQ_USED + 4(, %rdx, 8), %eax   # id: the buffer
    mov NET_RXQ_USED + 8(, %rdx, 8), %ecx   # len: header + frame
    cmp vnet_rxq + Q_SIZE(%rip), %rax
    jae vnet_bad_id
    cmp $VNET_HDR, %ecx
    jb vnet_bad_len
    cmp $VNET_RX_LEN, %ecx
    ja vnet_bad_len
    mov %rax, vnet_rx_cur(%rip)
    sub $VNET_HDR, %ecx
    shl $11, %rax
    add $NET_RX_BUFS + VNET_HDR, %rax
    ret
8:  xor %eax, %eax
    ret

# vnet_rx_done: the buffer vnet_rx_poll gave goes back to the device, the doorbell only if
# the device asks for one (it clears NO_NOTIFY when it ran out of buffers).
vnet_rx_done:
    incq vnet_rxq + Q_USED_IDX(%rip)
    mov vnet_rxq + Q_AVAIL_IDX(%rip), %rcx
    mov vnet_rxq + Q_SIZE(%rip), %rdx
    dec %rdx
    and %rcx, %rdx
    mov vnet_rx_cur(%rip), %rax
    mov %ax, NET_RXQ_AVAIL + 4(, %rdx, 2)
    inc %rcx
    mov %rcx, vnet_rxq + Q_AVAIL_IDX(%rip)
    mov %cx, NET_RXQ_AVAIL + 2
    mfence
    testw $VIRTQ_USED_F_NO_NOTIFY, NET_RXQ_USED
    jnz 9f
    lea vnet_rxq(%rip), %rsi
    VT VT_NOTIFY, vnet_dev(%rip)
9:  ret

# vnet_rx_arm: interrupts for the receiveq on: NO_INTERRUPT cleared in its available ring
# (RAM, no exit), then the used index read again. RAX = 1 if a frame is already there — the
# device may have used the buffer before it could see the flag, and then it sends no
# interrupt for it — else 0. The MFENCE keeps the flag's store ahead of the index's load (a
# store may otherwise pass a later load on x86): the other half of the device's rule, which
# writes the used index before it reads the flag (virtio 1.2 section 2.7.7; Linux's
# virtqueue_enable_cb does the same).
vnet_rx_arm:
    movw $0, NET_RXQ_AVAIL
    mfence
    movzwl NET_RXQ_USED + 2, %eax
    cmp vnet_rxq + Q_USED_IDX(%rip), %ax
    setne %al
    movzbl %al, %eax
    ret

# vnet_rx_disarm: interrupts for the receiveq off again (NO_INTERRUPT; one store).
vnet_rx_disarm:
    movw $VIRTQ_AVAIL_F_NO_INTERRUPT, NET_RXQ_AVAIL
    ret

# vnet_interrupt: the NIC's GSI (VECTOR_NET). Reading the ISR acknowledges the interrupt and
# lowers the level line; the EOI lets the IOAPIC look at the line again. net_receive only
# needed the wake-up: the frames are polled. Every register it touches is saved.
vnet_interrupt:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    VT VT_ISR, vnet_dev(%rip)
    incq net_irqs(%rip)
    call lapic_eoi
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq

vnet_tx_stuck:
    PRINT "net: the virtio-net did not take a frame from its transmitq\n"
    EXIT EXIT_NET_ERROR
vnet_bad_id:
    PRINT "net: the virtio-net used a descriptor it was never given\n"
    EXIT EXIT_NET_ERROR
vnet_bad_len:
    PRINT "net: the virtio-net wrote a receive buffer shorter than its header or longer than the buffer\n"
    EXIT EXIT_NET_ERROR
