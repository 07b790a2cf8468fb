# rtl8139.S — a driver for the Realtek RTL8139, polled, with an interrupt only while the
# receiver sleeps, for the network stack in net.S.
# Teaches: a NIC of the 1990s as the fully emulated device it is today. Everything goes
# through I/O ports (BAR 0), so every register touch is a VM exit under any VMM: sending a
# frame is one OUT (its transmit status register) and an IN before its descriptor is used
# again; receiving one is an IN to confirm the ring holds a record and an OUT to say how far
# the driver has read. Compare virtio_net.S, where a whole batch of frames costs one exit.
#
# Receive: one ring of 8 KiB (+16, + 1536 with RCR.WRAP so a frame never wraps), which the
# NIC fills with [u16 status][u16 length incl. the 4-byte CRC][frame][CRC], each record
# 4-byte aligned; the driver reads at its offset and tells the NIC through CAPR (offset − 16,
# a quirk of the chip). Transmit: four descriptors used strictly round-robin, each a buffer
# address (TSAD) and a status register (TSD): writing the size with OWN clear sends the
# frame; TOK says it went.
#
# Interrupts: the chip drives its INTx line while ISR & IMR ≠ 0. IMR stays 0 while the driver
# polls, so ISR's bits just pile up, unread (nothing here needs them: the ring and TSD say
# it all). Only while net_receive sleeps is IMR = ROK | RER | RXOVW (NIC_RX_ARM), and the
# handler writes ISR's bits back, which clears them and lowers the line. Each of those is an
# exit — arming (ISR, IMR), disarming (IMR), the handler (ISR twice): sleeping and waking cost
# this NIC five port accesses, where virtio-net's driver flips a flag in RAM. The line is the
# one the interrupt line register (PCI 0x3C) names: vmscope's board writes the GSI there
# (16 + (slot + pin - 1) mod 4); SeaBIOS under QEMU writes the ISA IRQ (10 or 11) its PCI
# link got, and QEMU's PIIX3 drives the IOAPIC input of that number too, level, active high.

.set RTL_PCI_IDS,   (0x8139 << 16) | 0x10EC
.set RTL_IDR0,      0x00            # the MAC, six byte registers
.set RTL_TSD0,      0x10            # transmit status of descriptor 0 (…3 at 0x1C), 32 bits
.set RTL_TSAD0,     0x20            # transmit start address of descriptor 0 (…3 at 0x2C)
.set RTL_RBSTART,   0x30            # receive ring start, 32 bits
.set RTL_CR,        0x37            # command, 8 bits
.set RTL_CAPR,      0x38            # current address of packet read, 16 bits
.set RTL_IMR,       0x3C            # interrupt mask, 16 bits
.set RTL_ISR,       0x3E            # interrupt status, 16 bits, write 1 to clear
.set RTL_INT_ROK,   1 << 0          # IMR/ISR: a frame received,
.set RTL_INT_RER,   1 << 1          #   a receive error,
.set RTL_INT_RXOVW, 1 << 4          #   the ring overflowed
.set RTL_RCR,       0x44            # receive configuration, 32 bits
.set RTL_CR_BUFE,   1 << 0          # the receive ring is empty
.set RTL_CR_TE,     1 << 2
.set RTL_CR_RE,     1 << 3
.set RTL_CR_RST,    1 << 4
.set RTL_RCR_APM,   1 << 1          # accept frames to our MAC ("physical match")
.set RTL_RCR_AB,    1 << 3          # accept broadcast (ARP requests)
.set RTL_RCR_WRAP,  1 << 7          # write past the ring's end instead of wrapping a frame
.set RTL_TSD_SIZE,  0x1FFF
.set RTL_TSD_OWN,   1 << 13         # the NIC has the data (set by the NIC when DMA is done)
.set RTL_TSD_TOK,   1 << 15         # sent
.set RTL_TSD_TABT,  1 << 30         # aborted
.set RTL_RX_ROK,    1 << 0          # the record's status: received OK
.set RTL_RING,      8192
.set RTL_MIN_FRAME, 60              # Ethernet's minimum without the CRC: pad up to it
.set RTL_RESET_SPINS, 1000000
.set RTL_TX_TICKS,  100             # 1 s for the NIC to send a frame
.set PCI_CMD_IO,    1 << 0

    .section .rodata
    .balign 8
rtl_ops:                            # the NIC operations (net.S: NIC_*)
    .long rtl_tx_buf, 0, rtl_tx_send, 0, rtl_tx_kick, 0, rtl_tx_drain, 0
    .long rtl_rx_poll, 0, rtl_rx_done, 0, rtl_describe, 0
    .long rtl_rx_arm, 0, rtl_rx_disarm, 0

    .bss
    .balign 8
rtl_pci_cfg:    .skip 8             # the function's config address
rtl_io:         .skip 8             # BAR 0: the I/O port base
rtl_gsi:        .skip 8             # the interrupt line register: the GSI
rtl_rx_off:     .skip 8             # where the next record starts in the ring
rtl_rx_len:     .skip 8             # the length field of the record rtl_rx_poll gave
rtl_tx_cur:     .skip 8             # the next transmit descriptor (0-3)
rtl_tx_busy:    .skip 8             # bit i: descriptor i has a frame TOK has not confirmed

# RTL_IN reg, size / RTL_OUT reg, size: IN/OUT of the register at rtl_io + reg; size is
# b, w or l (AL, AX or EAX). Clobber EDX.
.macro RTL_IN reg, size
    mov rtl_io(%rip), %edx
    add $\reg, %edx
    .ifc \size, b
    in %dx, %al
    .endif
    .ifc \size, w
    in %dx, %ax
    .endif
    .ifc \size, l
    in %dx, %eax
    .endif
.endm
.macro RTL_OUT reg, size
    mov rtl_io(%rip), %edx
    add $\reg, %edx
    .ifc \size, b
    out %al, %dx
    .endif
    .ifc \size, w
    out %ax, %dx
    .endif
    .ifc \size, l
    out %eax, %dx
    .endif
.endm

    .code64
    .text
# rtl_probe: find an RTL8139 on PCI bus 0 (10ec:8139) and bring it up: I/O decoding and bus
# mastering on, a software reset, the MAC into net_mac, the rings, receive and transmit on,
# the interrupt line routed (net_irq_route; IMR stays 0 until NIC_RX_ARM).
# RAX = 1 (and nic_ops = rtl_ops) if there is one, else 0. Keeps RBX, RBP, R12-R15.
rtl_probe:
    push %rbx
    mov $RTL_PCI_IDS, %esi
    call pci_find
    cmp $-1, %eax
    je 9f
    mov %eax, %ebx                  # EBX = the config address
    mov %rbx, rtl_pci_cfg(%rip)
    lea PCI_BAR0(%rbx), %edi
    call pci_read32
    test $1, %al                    # BAR 0 must be I/O space
    jz 7f
    and $0xFFFC, %eax
    jz 7f
    mov %rax, rtl_io(%rip)
    lea PCI_COMMAND(%rbx), %edi
    call pci_read16
    or $PCI_CMD_IO | PCI_CMD_BUS_MASTER, %eax   # ports, and DMA to the rings
    mov %eax, %esi
    lea PCI_COMMAND(%rbx), %edi
    call pci_write16
    mov $RTL_CR_RST, %al            # software reset: the chip clears RST when done
    RTL_OUT RTL_CR, b
    mov $RTL_RESET_SPINS, %ecx
1:  RTL_IN RTL_CR, b
    test $RTL_CR_RST, %al
    jz 2f
    pause
    dec %ecx
    jnz 1b
    jmp 6f
2:  xor %ecx, %ecx                  # the MAC, IDR0-IDR5
3:  mov rtl_io(%rip), %edx
    add %ecx, %edx
    in %dx, %al
    lea net_mac(%rip), %rdx
    mov %al, (%rdx, %rcx)
    inc %ecx
    cmp $6, %ecx
    jb 3b
    xor %ecx, %ecx                  # TSAD0-3: transmit buffer i, once and for all
4:  lea (%rcx, %rcx), %eax
    shl $10, %eax
    add $NET_RTL_TX, %eax
    mov rtl_io(%rip), %edx
    lea RTL_TSAD0(%rdx, %rcx, 4), %edx
    out %eax, %dx
    inc %ecx
    cmp $4, %ecx
    jb 4b
    mov $NET_RTL_RX, %edi           # the ring starts out all zero (see rtl_rx_poll)
    mov $(RTL_RING + 16 + 1536) / 8, %ecx
    xor %eax, %eax
    rep stosq
    mov $NET_RTL_RX, %eax
    RTL_OUT RTL_RBSTART, l
    xor %eax, %eax                  # no interrupts while the driver polls
    RTL_OUT RTL_IMR, w
    mov $RTL_CR_RE | RTL_CR_TE, %al
    RTL_OUT RTL_CR, b
    mov $RTL_RCR_AB | RTL_RCR_APM | RTL_RCR_WRAP, %eax  # 8 KiB + 16 ring (RBLEN 0)
    RTL_OUT RTL_RCR, l
    movq $0, rtl_rx_off(%rip)
    movq $0, rtl_tx_cur(%rip)       # after a reset the chip starts at descriptor 0
    movq $0, rtl_tx_busy(%rip)
    lea PCI_INT_LINE(%rbx), %edi    # the interrupt: GSI -> IOAPIC -> VECTOR_NET, level
    call pci_read8
    mov %rax, rtl_gsi(%rip)
    mov %eax, %edi
    mov $rtl_interrupt, %esi
    call net_irq_route
    lea rtl_ops(%rip), %rax
    mov %rax, nic_ops(%rip)
    mov $1, %eax
    pop %rbx
    ret
9:  xor %eax, %eax
    pop %rbx
    ret
7:  PRINT "net: the RTL8139's BAR 0 is not a placed I/O range\n"
    EXIT EXIT_NET_ERROR
6:  PRINT "net: the RTL8139 did not finish its software reset\n"
    EXIT EXIT_NET_ERROR

# ---- the NIC operations (net.S documents them); each clobbers at most RAX, RCX, RDX, RSI,
# RDI, R8-R11 ---------------------------------------------------------------------------------
# rtl_describe: "rtl8139, pci 00:SS.0, i/o ports 0x..., gsi N".
rtl_describe:
    PRINT "rtl8139, pci 00:"
    mov rtl_pci_cfg(%rip), %rax
    shr $11, %eax
    and $31, %eax
    shl $56, %rax
    mov $2, %esi
    call print_hex_digits
    PRINT ".0, i/o ports 0x"
    mov rtl_io(%rip), %rax
    call print_hex
    PRINT ", gsi "
    mov rtl_gsi(%rip), %rax
    call print_u64
    ret

# rtl_tx_buf: RAX = the buffer of the next descriptor, once the NIC has sent what it held.
rtl_tx_buf:
    mov rtl_tx_cur(%rip), %rcx
    call rtl_tx_wait
    mov rtl_tx_cur(%rip), %rax
    shl $11, %rax
    add $NET_RTL_TX, %rax
    ret

# rtl_tx_wait: ECX = a descriptor; returns once it holds no frame still being sent (TOK), or
# stops the kernel after RTL_TX_TICKS or on TABT. Keeps ECX.
rtl_tx_wait:
    bt %ecx, rtl_tx_busy(%rip)
    jnc 9f
    mov ticks(%rip), %r8
    add $RTL_TX_TICKS, %r8
1:  mov rtl_io(%rip), %edx
    lea RTL_TSD0(%rdx, %rcx, 4), %edx
    in %dx, %eax
    test $RTL_TSD_TOK, %eax
    jnz 2f
    test $RTL_TSD_TABT, %eax
    jnz 8f
    pause
    cmp %r8, ticks(%rip)
    jb 1b
    PRINT "net: the RTL8139 did not send a frame (no TOK)\n"
    EXIT EXIT_NET_ERROR
8:  PRINT "net: the RTL8139 aborted a transmission (TABT)\n"
    EXIT EXIT_NET_ERROR
2:  btr %ecx, rtl_tx_busy(%rip)
9:  ret

# rtl_tx_send: ECX = the length of the frame in the buffer rtl_tx_buf gave: padded to 60
# bytes, then sent by writing its size to TSD with OWN clear (one OUT, one exit).
rtl_tx_send:
    mov rtl_tx_cur(%rip), %rax
    cmp $RTL_MIN_FRAME, %ecx
    jae 1f
    mov %rax, %rdi                  # zeros from the end of the frame up to 60 bytes
    shl $11, %rdi
    lea NET_RTL_TX(%rdi, %rcx), %rdi
    neg %ecx
    add $RTL_MIN_FRAME, %ecx
    xor %eax, %eax
    rep stosb
    mov $RTL_MIN_FRAME, %ecx
    mov rtl_tx_cur(%rip), %rax
1:  and $RTL_TSD_SIZE, %ecx         # size; OWN = 0; early-transmit threshold 0
    mov rtl_io(%rip), %edx
    lea RTL_TSD0(%rdx, %rax, 4), %edx
    xchg %eax, %ecx
    out %eax, %dx
    bts %ecx, rtl_tx_busy(%rip)
    inc %ecx
    and $3, %ecx
    mov %rcx, rtl_tx_cur(%rip)
    ret

# rtl_tx_kick: nothing to do: each frame went at its TSD write.
rtl_tx_kick:
    ret

# rtl_tx_drain: wait until the NIC has sent every frame it was given.
rtl_tx_drain:
    xor %ecx, %ecx
1:  call rtl_tx_wait
    inc %ecx
    cmp $4, %ecx
    jb 1b
    ret

# rtl_rx_poll: RAX = the next received frame and ECX = its length (without the CRC), or
# RAX = 0 when the ring is empty. Waiting costs no exits: the driver keeps every byte of the
# ring it has read zeroed (rtl_rx_done), so while the record header at its offset reads 0
# nothing has arrived; once it does not, CR.BUFE (one IN) confirms that the NIC has finished
# the record. A record that is not ROK, or whose length is not a frame's, means the driver
# lost its place: the kernel stops.
rtl_rx_poll:
    mov rtl_rx_off(%rip), %rax
    cmpl $0, NET_RTL_RX(%rax)
    je 8f
    RTL_IN RTL_CR, b
    test $RTL_CR_BUFE, %al
    jnz 8f
    mov rtl_rx_off(%rip), %rax
    movzwl NET_RTL_RX(%rax), %edx   # status
    movzwl NET_RTL_RX + 2(%rax), %ecx   # length, CRC included
    test $RTL_RX_ROK, %dl
    jz 7f
    cmp $14 + 4, %ecx
    jb 7f
    cmp $1514 + 4, %ecx
    ja 7f
    mov %rcx, rtl_rx_len(%rip)
    sub $4, %ecx
    lea NET_RTL_RX + 4(%rax), %rax
    ret
8:  xor %eax, %eax
    ret
7:  push %rcx
    push %rdx
    PRINT "net: the RTL8139's receive ring holds a bad record (status 0x"
    pop %rax
    call print_hex
    PRINT ", length "
    pop %rax
    call print_u64
    PRINT ")\n"
    EXIT EXIT_NET_ERROR

# rtl_rx_done: zero the record (header, frame, CRC, aligned to 4: where the NIC wrote it,
# past the ring's end too), step over it (modulo the ring), and only then tell the NIC
# through CAPR that the room is free (one OUT: ISR is not touched, see the header).
rtl_rx_done:
    mov rtl_rx_off(%rip), %rdi
    mov rtl_rx_len(%rip), %rcx
    add $4 + 3, %rcx
    shr $2, %rcx
    lea (%rdi, %rcx, 4), %rdx       # RDX = the next record's offset, before the modulo
    add $NET_RTL_RX, %rdi
    xor %eax, %eax
    rep stosl
    mov %rdx, %rax
    cmp $RTL_RING, %rax
    jb 1f
    sub $RTL_RING, %rax
1:  mov %rax, rtl_rx_off(%rip)
    sub $16, %eax                   # CAPR trails the read offset by 16
    RTL_OUT RTL_CAPR, w
    ret

# rtl_rx_arm: interrupt for the next frame. First ISR's bits are cleared — the frames polled
# while IMR was 0 left ROK there, and ISR & IMR would raise the line at once — then IMR set
# (two OUTs), then the ring looked at again (RAM): RAX = 1 if a record is there already (it
# may have arrived before the clearing, its ROK gone with it), else 0.
rtl_rx_arm:
    mov $0xFFFF, %eax
    RTL_OUT RTL_ISR, w
    mov $RTL_INT_ROK | RTL_INT_RER | RTL_INT_RXOVW, %eax
    RTL_OUT RTL_IMR, w
    mov rtl_rx_off(%rip), %rax
    cmpl $0, NET_RTL_RX(%rax)       # the driver keeps what it read zeroed (rtl_rx_poll)
    setne %al
    movzbl %al, %eax
    ret

# rtl_rx_disarm: IMR = 0 (one OUT): the line stays low, ISR's bits pile up again.
rtl_rx_disarm:
    xor %eax, %eax
    RTL_OUT RTL_IMR, w
    ret

# rtl_interrupt: the NIC's GSI (VECTOR_NET). ISR's bits written back clear them, and the line
# drops (ISR & IMR = 0); the EOI lets the IOAPIC look at it again. The frames are polled.
# Every register it touches is saved.
rtl_interrupt:
    push %rax
    push %rdx
    RTL_IN RTL_ISR, w
    test %ax, %ax
    jz 1f                           # not ours (a shared line)
    RTL_OUT RTL_ISR, w
1:  incq net_irqs(%rip)
    call lapic_eoi
    pop %rdx
    pop %rax
    iretq
