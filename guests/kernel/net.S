# net.S — a tiny network stack (Ethernet II, ARP, IPv4, ICMP echo, UDP) over two NIC drivers,
# and the workloads that use it: ping, pong, udp-send, udp-recv.
# Teaches: what sits between a NIC and a ping. A frame is addressed by MAC, a packet by IP, so
# before the first packet ARP asks "who has 10.0.0.2?" by broadcast and remembers the answer;
# IPv4 and ICMP each carry the Internet checksum (the one's-complement sum of 16-bit words,
# byte-order independent, so it is summed here as little-endian words and stored as it
# comes out). And it shows what the NIC costs: the same datagrams through an emulated
# RTL8139 (an exit per register touch, several per frame) and through virtio-net (an exit per
# batch). Command line: ip=A.B.C.D (10.0.0.1), peer=A.B.C.D (10.0.0.2), nic=virtio|rtl8139
# (else: virtio-net on PCI, then in the virtio-mmio windows, then an RTL8139 on PCI).
#
# Every workload's prepare step (outside the timed loop) brings the NIC up — once per boot —
# and resolves the peer's MAC by ARP: a request every 200 ms, 50 of them, then EXIT_NET_TIMEOUT.
# Every wait is bounded by the timer's ticks (100 Hz, timer.S), so a guest without a peer ends.
#
#  ping:N      N echo requests (id 0x766d, seq 1..N), each waiting up to 1 s for its reply;
#              payload: seven 8-byte words, word i = seq << 32 | i. Checksum: console.S's fold
#              (h = (h XOR word) × 0x100000001B3 from 0xCBF29CE484222325) of every reply's
#              payload words. A lost reply prints "ping: timeout seq=K" and changes the checksum.
#  pong:N      answers ARP and echo requests until N requests were answered; checksum: the fold
#              of the request payloads (the same as ping's when nothing was lost).
#  udp-send:N  N datagrams 1024 → peer port 9 (discard), 1024 bytes each, word i of datagram k
#              = k << 32 | i; checksum: the fold of every word sent.
#  udp-recv:N  receives N datagrams for port 9; checksum: the fold of their payload words, so
#              udp-send:N on one guest and udp-recv:N on the other agree.
# pong and udp-recv give up after 10 s without what they wait for (EXIT_NET_TIMEOUT).

.set NIC_ANY,         0
.set NIC_VIRTIO,      1
.set NIC_RTL8139,     2
# The NIC operations, a table of pointers each driver provides (virtio_net.S, rtl8139.S). Each
# keeps RBX, RBP, R12-R15 and may clobber RAX, RCX, RDX, RSI, RDI, R8-R11.
.set NIC_TX_BUF,      0             # RAX = where the next frame to send is built (1514 bytes)
.set NIC_TX_SEND,     8             # ECX = its length: it is the device's now (maybe not sent)
.set NIC_TX_KICK,     16            # let every frame handed over go (virtio: one doorbell)
.set NIC_TX_DRAIN,    24            # kick, and wait until the device has taken them all
.set NIC_RX_POLL,     32            # RAX = a received frame and ECX = its length, or RAX = 0
.set NIC_RX_DONE,     40            # the frame NIC_RX_POLL gave back to the device
.set NIC_DESCRIBE,    48            # print where the NIC is
.set NIC_RX_ARM,      56            # interrupt when a frame arrives; RAX = 1 if one is already
                                    # waiting (the caller disarms and polls instead of sleeping)
.set NIC_RX_DISARM,   64            # stop interrupting
.macro NIC op
    mov nic_ops(%rip), %rax
    call *\op(%rax)
.endm

# What net_input found in a frame (EAX):
.set NET_IN_TIMEOUT,  0             # (net_receive: the deadline passed, no frame)
.set NET_IN_OTHER,    1             # ARP, something not for us, or malformed: already given back
.set NET_IN_ECHO_REQUEST, 2         # an ICMP echo request to us (answered already)
.set NET_IN_ECHO_REPLY, 3           # an ICMP echo reply to us
.set NET_IN_UDP,      4             # a UDP datagram to us
.set ETH_HLEN,        14
.set IP_HLEN,         20
.set ETHERTYPE_IP,    0x0008        # 0x0800 and 0x0806 as they lie in memory (big-endian)
.set ETHERTYPE_ARP,   0x0608
.set IPPROTO_ICMP,    1
.set IPPROTO_UDP,     17
.set ICMP_ECHO_REPLY, 0
.set ICMP_ECHO_REQUEST, 8
.set PING_ID,         0x766D        # "vm"
.set PING_PAYLOAD,    56            # seven words, as ping(8) sends by default
.set UDP_SRC_PORT,    1024
.set UDP_DISCARD,     9
.set UDP_PAYLOAD,     1024
.set ARP_TRIES,       50
.set ARP_RETRY_TICKS, 20            # 200 ms between ARP requests
.set PING_TICKS,      100           # 1 s for an echo reply
.set IDLE_TICKS,      1000          # 10 s for pong's or udp-recv's next packet
.set NET_BUSY_POLLS,  2000          # empty polls before net_receive arms the NIC and sleeps

    .data
    .balign 8
net_ip:         .byte 10, 0, 0, 1   # ip= (as on the wire)
net_peer_ip:    .byte 10, 0, 0, 2   # peer=
broadcast_mac:  .byte 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0
    .bss
    .balign 8
nic_ops:        .skip 8             # the driver in use; 0 until a prepare step brought one up
nic_choice:     .skip 8             # nic=: NIC_ANY, NIC_VIRTIO, NIC_RTL8139
net_mac:        .skip 8             # our MAC (6 bytes), from the device
peer_mac:       .skip 8             # the peer's, from ARP
peer_known:     .skip 8             # 1 once peer_mac holds it
peer_announced: .skip 8
net_ip_id:      .skip 8             # the next IPv4 identification
net_gsi:        .skip 8             # the NIC's interrupt line (GSI) ...
net_wake:       .skip 8             # ... and 1 while it is routed to VECTOR_NET: net_receive
                                    # then sleeps with the NIC armed (net_irq_route)
net_irqs:       .skip 8             # NIC interrupts handled

    .code64
    .text
# k_net_prepare: the network workloads' prepare step: the NIC up (the first time: found,
# brought up, described on one line), the peer's MAC known. Keeps RBX, RBP, R12-R15.
k_net_prepare:
    push %rbx
    push %r12
    push %r13
    sti                             # the deadlines count timer ticks
    cmpq $0, nic_ops(%rip)
    jne 5f
    cmpq $NIC_RTL8139, nic_choice(%rip)
    je 1f
    call vnet_probe                 # virtio_net.S
    test %eax, %eax
    jnz 4f
    cmpq $NIC_VIRTIO, nic_choice(%rip)
    je 3f
1:  call rtl_probe                  # rtl8139.S
    test %eax, %eax
    jnz 4f
    cmpq $NIC_RTL8139, nic_choice(%rip)
    je 2f
    PRINT "net: the network workloads need a NIC and there is none (virtio-net: PCI 1af4:1041 or virtio-mmio device ID 1; RTL8139: PCI 10ec:8139)\n"
    EXIT EXIT_NO_NIC
2:  PRINT "net: nic=rtl8139, but there is no RTL8139 (PCI 10ec:8139)\n"
    EXIT EXIT_NO_NIC
3:  PRINT "net: nic=virtio, but there is no virtio-net (PCI 1af4:1041, virtio-mmio device ID 1)\n"
    EXIT EXIT_NO_NIC
4:  PRINT "net: "
    NIC NIC_DESCRIBE
    PRINT "; mac "
    lea net_mac(%rip), %rsi
    call print_mac
    PRINT " ip "
    mov net_ip(%rip), %eax
    call print_ipv4
    PRINT "\n"
5:  cmpq $0, peer_known(%rip)       # ARP: who has peer_ip?
    jne 8f
    mov $ARP_TRIES, %r12d
6:  mov $1, %edi                    # a request, broadcast
    lea broadcast_mac(%rip), %rsi
    mov net_peer_ip(%rip), %edx
    call net_send_arp
    mov ticks(%rip), %r13
    add $ARP_RETRY_TICKS, %r13
7:  mov %r13, %rdi
    call net_receive                # answers ARP, learns the peer from any ARP it sends
    cmpq $0, peer_known(%rip)
    jne 9f
    cmp $NET_IN_TIMEOUT, %eax
    je 10f
    cmp $NET_IN_OTHER, %eax
    je 7b
    NIC NIC_RX_DONE                 # an echo or a datagram before we are ready: dropped
    jmp 7b
10: dec %r12d
    jnz 6b
    PRINT "net: no ARP answer from "
    mov net_peer_ip(%rip), %eax
    call print_ipv4
    PRINT " after 10 s (is the peer running, and on the same link?)\n"
    EXIT EXIT_NET_TIMEOUT
9:  cmp $NET_IN_ECHO_REQUEST, %eax  # (resolved by an ARP frame: OTHER, given back already)
    jb 8f
    NIC NIC_RX_DONE
8:  cmpq $0, peer_announced(%rip)
    jne 11f
    movq $1, peer_announced(%rip)
    PRINT "net: peer "
    mov net_peer_ip(%rip), %eax
    call print_ipv4
    PRINT " is at "
    lea peer_mac(%rip), %rsi
    call print_mac
    PRINT "\n"
11: pop %r13
    pop %r12
    pop %rbx
    ret

# net_irq_route: EDI = the NIC's GSI, ESI = the driver's interrupt handler (below 4 GiB). The
# line goes through the IOAPIC to VECTOR_NET, level-triggered, as virtio_blk.S routes the
# disk's, and net_wake = 1. Not if the IOAPIC has no such input (an RTL8139 whose interrupt
# line register reads 0xFF: "none") or the virtio disk is already on that line (one vector per
# input, and each handler acknowledges only its own device: a shared level line would stay
# high): then the NIC is never armed and a sleeping receiver wakes at the tick, as before.
# The drivers' probes call this once per boot. Keeps RBX, RBP, R12-R15.
net_irq_route:
    push %rbx
    push %r12
    mov %edi, %ebx
    mov %esi, %r12d
    mov %rbx, net_gsi(%rip)
    cmpq $0, blk_features(%rip)     # virtio_blk_init has run: its line is taken
    je 1f
    cmp blk_dev + VD_GSI(%rip), %rbx
    je 8f
1:  call apic_enable
    mov $VECTOR_NET, %edi
    mov %r12d, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    mov %ebx, %edi
    mov $VECTOR_NET | REDIR_LEVEL, %esi
    call ioapic_route
    test %rax, %rax
    jnz 9f
    movq $1, net_wake(%rip)
    jmp 7f
8:  PRINT "net: the NIC shares gsi "
    mov %rbx, %rax
    call print_u64
    PRINT " with the virtio disk: a sleeping receiver wakes at the tick\n"
    jmp 7f
9:  PRINT "net: the IOAPIC has no input for the NIC's gsi "
    mov %rbx, %rax
    call print_u64
    PRINT ": a sleeping receiver wakes at the tick\n"
7:  pop %r12
    pop %rbx
    ret

# ANCHOR: net_receive
# net_receive: RDI = a deadline (a value of ticks). Polls the NIC until a frame arrives (then
# net_input's results: EAX = NET_IN_*, and for an echo or a datagram RSI/ECX/EDX/R8D/R9D;
# the caller gives that frame back with NIC_RX_DONE) or the deadline passes (EAX =
# NET_IN_TIMEOUT). Keeps RBX, RBP, R12-R15.
# NAPI's pattern: poll NET_BUSY_POLLS times with the NIC's interrupt off (a burst is taken at
# once, nothing is signalled per frame), then arm the NIC (NIC_RX_ARM), look once more — a
# frame that came in before the arming raises no interrupt, so it must not be slept through
# — and only then sleep: STI; HLT until the NIC's interrupt or the timer's tick, whichever
# comes first (the deadlines still count ticks); then disarm and poll again. CLI from the
# arming to the HLT: an interrupt taken between the last look and the HLT would leave the
# receiver asleep with a frame waiting (STI lets interrupts in only after the next
# instruction, the HLT). An idle wait costs no CPU, and under an emulator the halted time is
# skipped; the price of sleeping is what arming and disarming cost: two stores to RAM for
# virtio-net, three port writes (exits) for the RTL8139.
net_receive:
    push %rbx
    push %r12
    mov %rdi, %rbx
0:  mov $NET_BUSY_POLLS, %r12d
1:  NIC NIC_RX_POLL
    test %rax, %rax
    jnz 2f
    pause
    cmp %rbx, ticks(%rip)
    jae 4f
    dec %r12d
    jnz 1b
    cmpq $0, net_wake(%rip)
    je 6f
    cli
    NIC NIC_RX_ARM
    test %eax, %eax
    jnz 5f                          # a frame slipped in before the arming: no sleep
    sti
    hlt                             # until the NIC's interrupt or the next tick
5:  sti
    NIC NIC_RX_DISARM
    jmp 0b
6:  sti                             # no wake-up line: until the next tick
    hlt
    jmp 0b
4:  xor %eax, %eax
    pop %r12
    pop %rbx
    ret
2:  mov %rax, %rdi
    mov %ecx, %esi
    call net_input
    cmp $NET_IN_OTHER, %eax
    jne 3f
    NIC NIC_RX_DONE                 # nothing for the caller in it
    mov $NET_IN_OTHER, %eax
3:  pop %r12
    pop %rbx
    ret
# ANCHOR_END: net_receive

# net_input: RDI = a received frame, ESI = its length. Answers what the stack answers by
# itself (ARP requests for our IP, echo requests), learns the peer's MAC from its ARP packets,
# and says what the frame was: EAX = NET_IN_*; for an echo (request or reply) or a datagram
# also RSI = its payload, ECX = the payload's length, R9D = the source IP and for an echo
# EDX = the sequence number and R8D = the identifier, for a datagram EDX = the destination
# port and R8D = the source port. The frame stays the caller's. Keeps RBX, RBP, R12-R15.
net_input:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12                  # R12 = the frame
    mov %esi, %ebx                  # EBX = its length
    cmp $ETH_HLEN, %ebx
    jb 8f
    movzwl 12(%r12), %eax
    cmp $ETHERTYPE_ARP, %ax
    je 20f
    cmp $ETHERTYPE_IP, %ax
    jne 8f
    # IPv4: version 4, IHL 5 (no options), to our address, no fragment, a good checksum.
    cmp $ETH_HLEN + IP_HLEN, %ebx
    jb 8f
    cmpb $0x45, 14(%r12)
    jne 8f
    movzwl 16(%r12), %eax           # the total length (big-endian)
    xchg %al, %ah
    cmp $IP_HLEN, %eax
    jb 8f
    lea ETH_HLEN(%rax), %ecx
    cmp %ebx, %ecx
    ja 8f
    lea -IP_HLEN(%rax), %r13d       # R13D = the bytes after the IP header
    testw $0xFF3F, 20(%r12)         # MF or a fragment offset: not handled
    jnz 8f
    mov 30(%r12), %eax
    cmp net_ip(%rip), %eax
    jne 8f
    lea ETH_HLEN(%r12), %rsi
    mov $IP_HLEN, %ecx
    call inet_checksum              # over a correct header, checksum field included: 0
    test %ax, %ax
    jnz 8f
    movzbl 23(%r12), %eax
    cmp $IPPROTO_ICMP, %eax
    je 30f
    cmp $IPPROTO_UDP, %eax
    jne 8f
    # UDP: the length field within the packet; the checksum is not looked at.
    cmp $8, %r13d
    jb 8f
    movzwl 38(%r12), %ecx
    xchg %cl, %ch
    cmp $8, %ecx
    jb 8f
    cmp %r13d, %ecx
    ja 8f
    sub $8, %ecx
    movzwl 36(%r12), %edx           # the destination port
    xchg %dl, %dh
    movzwl 34(%r12), %r8d           # the source port
    ror $8, %r8w
    mov $NET_IN_UDP, %eax
    jmp 40f
30: # ICMP: an echo request or reply with a good checksum.
    cmp $8, %r13d
    jb 8f
    lea ETH_HLEN + IP_HLEN(%r12), %rsi
    mov %r13d, %ecx
    call inet_checksum
    test %ax, %ax
    jnz 8f
    cmpb $0, 35(%r12)               # code 0
    jne 8f
    movzbl 34(%r12), %eax
    cmp $ICMP_ECHO_REPLY, %eax
    je 31f
    cmp $ICMP_ECHO_REQUEST, %eax
    jne 8f
    NIC NIC_TX_BUF                  # the reply: the request with type 0, back to its sender
    mov %rax, %rdi
    lea 6(%r12), %rsi               # the request's source MAC ...
    mov 26(%r12), %edx              # ... and IP
    mov $IPPROTO_ICMP, %ecx
    mov %r13d, %r8d
    push %rax
    call net_ip_frame
    lea ETH_HLEN + IP_HLEN(%r12), %rsi
    mov %r13d, %ecx
    push %rdi
    rep movsb                       # identifier, sequence and payload as they came
    pop %rdi
    movb $ICMP_ECHO_REPLY, (%rdi)
    movw $0, 2(%rdi)
    mov %rdi, %rsi
    mov %r13d, %ecx
    call inet_checksum
    pop %rdi
    mov %ax, ETH_HLEN + IP_HLEN + 2(%rdi)
    lea ETH_HLEN + IP_HLEN(%r13), %ecx
    NIC NIC_TX_SEND
    NIC NIC_TX_KICK
    mov $NET_IN_ECHO_REQUEST, %eax
    jmp 32f
31: mov $NET_IN_ECHO_REPLY, %eax
32: lea -8(%r13), %ecx              # the payload after the 8-byte ICMP header
    movzwl 40(%r12), %edx           # the sequence number
    xchg %dl, %dh
    movzwl 38(%r12), %r8d           # the identifier
    ror $8, %r8w
40: lea ETH_HLEN + IP_HLEN + 8(%r12), %rsi
    mov 26(%r12), %r9d
    jmp 9f
20: # ARP for IPv4 over Ethernet: htype 1, ptype 0x0800, hlen 6, plen 4.
    cmp $ETH_HLEN + 28, %ebx
    jb 8f
    cmpl $0x00080100, 14(%r12)
    jne 8f
    cmpw $0x0406, 18(%r12)
    jne 8f
    mov 28(%r12), %eax              # the sender's IP: the peer? Then its MAC is known
    cmp net_peer_ip(%rip), %eax     # (from a request as well as a reply, RFC 826)
    jne 21f
    mov 22(%r12), %eax
    mov %eax, peer_mac(%rip)
    movzwl 26(%r12), %eax
    mov %ax, peer_mac + 4(%rip)
    movq $1, peer_known(%rip)
21: cmpw $0x0100, 20(%r12)          # a request (1) ...
    jne 8f
    mov 38(%r12), %eax              # ... for our address: answer it
    cmp net_ip(%rip), %eax
    jne 8f
    mov $2, %edi
    lea 22(%r12), %rsi
    mov 28(%r12), %edx
    call net_send_arp
8:  mov $NET_IN_OTHER, %eax
9:  pop %r13
    pop %r12
    pop %rbx
    ret

# net_send_arp: EDI = the operation (1 request, 2 reply), RSI = the destination MAC (a reply:
# also the target hardware address; a request: broadcast, target hardware address 0), EDX =
# the target IP. Padded to 60 bytes, sent at once. Keeps RBX, RBP, R12-R15.
net_send_arp:
    push %r12
    push %r13
    push %r14
    mov %edi, %r12d
    mov %rsi, %r13
    mov %edx, %r14d
    NIC NIC_TX_BUF
    mov %rax, %rdi
    mov (%r13), %ecx                # Ethernet: to the destination, from us, ARP
    mov %ecx, (%rdi)
    movzwl 4(%r13), %ecx
    mov %cx, 4(%rdi)
    mov net_mac(%rip), %ecx
    mov %ecx, 6(%rdi)
    mov %ecx, 22(%rdi)              # the sender hardware address: us
    movzwl net_mac + 4(%rip), %ecx
    mov %cx, 10(%rdi)
    mov %cx, 26(%rdi)
    movw $ETHERTYPE_ARP, 12(%rdi)
    movl $0x00080100, 14(%rdi)      # htype 1, ptype 0x0800
    movw $0x0406, 18(%rdi)          # hlen 6, plen 4
    mov %r12d, %ecx
    xchg %cl, %ch
    mov %cx, 20(%rdi)               # the operation
    mov net_ip(%rip), %ecx
    mov %ecx, 28(%rdi)              # the sender IP: us
    xor %ecx, %ecx
    cmp $2, %r12d
    jne 1f
    mov (%r13), %ecx                # a reply: target hardware = the one who asked
1:  mov %ecx, 32(%rdi)
    movzwl 4(%r13), %ecx
    cmp $2, %r12d
    je 2f
    xor %ecx, %ecx
2:  mov %cx, 36(%rdi)
    mov %r14d, 38(%rdi)             # the target IP
    movl $0, 42(%rdi)               # padding to 60 bytes: zeros
    movq $0, 46(%rdi)
    movq $0, 52(%rdi)
    mov $60, %ecx
    NIC NIC_TX_SEND
    NIC NIC_TX_KICK
    pop %r14
    pop %r13
    pop %r12
    ret

# net_ip_frame: RDI = a transmit buffer, RSI = the destination MAC, EDX = the destination IP
# (as on the wire), ECX = the protocol, R8D = the bytes that follow the IP header. Writes the
# Ethernet and IPv4 headers (TTL 64, the next identification, no fragment flags, the
# checksum); RDI = where the IP payload goes. Clobbers RAX, RCX, RDX, RSI.
net_ip_frame:
    mov (%rsi), %eax
    mov %eax, (%rdi)
    movzwl 4(%rsi), %eax
    mov %ax, 4(%rdi)
    mov net_mac(%rip), %eax
    mov %eax, 6(%rdi)
    movzwl net_mac + 4(%rip), %eax
    mov %ax, 10(%rdi)
    movw $ETHERTYPE_IP, 12(%rdi)
    movw $0x0045, 14(%rdi)          # version 4, IHL 5; TOS 0
    lea IP_HLEN(%r8), %eax
    xchg %al, %ah
    mov %ax, 16(%rdi)               # the total length
    mov net_ip_id(%rip), %eax
    incq net_ip_id(%rip)
    xchg %al, %ah
    mov %ax, 18(%rdi)
    movw $0, 20(%rdi)               # flags and fragment offset
    movb $64, 22(%rdi)              # TTL
    mov %cl, 23(%rdi)
    movw $0, 24(%rdi)               # the checksum, computed below with this field 0
    mov net_ip(%rip), %eax
    mov %eax, 26(%rdi)
    mov %edx, 30(%rdi)
    lea ETH_HLEN(%rdi), %rsi
    mov $IP_HLEN, %ecx
    call inet_checksum
    mov %ax, 24(%rdi)
    add $ETH_HLEN + IP_HLEN, %rdi
    ret

# inet_checksum: RSI = bytes, ECX = how many. AX = the Internet checksum (RFC 1071): the
# one's complement of the one's-complement sum of the 16-bit words (an odd last byte padded
# with a zero), in the byte order to store it in. Summed as little-endian words: one's-
# complement addition commutes with swapping the bytes of every word. Clobbers RCX, RDX, RSI.
inet_checksum:
    xor %eax, %eax
1:  cmp $2, %ecx
    jb 2f
    movzwl (%rsi), %edx
    add %rdx, %rax
    add $2, %rsi
    sub $2, %ecx
    jmp 1b
2:  test %ecx, %ecx
    jz 3f
    movzbl (%rsi), %edx             # the odd byte: the first byte of a word, then 0
    add %rdx, %rax
3:  mov %rax, %rdx                  # fold the carries back in, until 16 bits remain
    shr $16, %rdx
    jz 4f
    movzwl %ax, %eax
    add %rdx, %rax
    jmp 3b
4:  not %eax
    movzwl %ax, %eax
    ret

# net_fold: RSI = bytes, ECX = how many (whole 8-byte words are folded); R13 = the checksum,
# R14 = FNV_PRIME: h = (h XOR word) × FNV_PRIME per word, as console.S. Clobbers RCX, RSI.
net_fold:
    shr $3, %ecx
    jz 9f
1:  xor (%rsi), %r13
    imul %r14, %r13
    add $8, %rsi
    dec %ecx
    jnz 1b
9:  ret

# ---- the command line and printing -----------------------------------------------------------
# parse_net_option: RSI = a command-line word. RAX = 1 and RSI after the word if it is ip=,
# peer= or nic= (cmdline.S calls this for words it does not know), else RAX = 0. Clobbers
# RCX, RDX, RDI, R8, R9.
parse_net_option:
    mov $key_ip, %edi
    call starts_with
    jnz 1f
    add $key_ip_len, %rsi
    call parse_ipv4
    mov %eax, net_ip(%rip)
    jmp 8f
1:  mov $key_peer, %edi
    call starts_with
    jnz 2f
    add $key_peer_len, %rsi
    call parse_ipv4
    mov %eax, net_peer_ip(%rip)
    jmp 8f
2:  mov $key_nic, %edi
    call starts_with
    jnz 9f
    add $key_nic_len, %rsi
    mov $NIC_VIRTIO, %edx
    mov $nic_name_virtio, %edi
    call name_matches
    je 3f
    mov $NIC_RTL8139, %edx
    mov $nic_name_rtl8139, %edi
    call name_matches
    je 3f
    PRINT "kernel: nic= must be virtio or rtl8139\n"
    EXIT EXIT_BAD_CMDLINE
3:  mov %rdx, nic_choice(%rip)
    add %rcx, %rsi                  # (name_matches left RCX = the name's length)
8:  mov $1, %eax
    ret
9:  xor %eax, %eax
    ret

# print_ipv4: EAX = an address as on the wire; "A.B.C.D". Clobbers RAX, RCX, RDX, RSI, RDI, R8.
print_ipv4:
    push %rbx
    push %r12
    mov %eax, %ebx
    mov $4, %r12d
1:  movzbl %bl, %eax
    call print_u64
    shr $8, %ebx
    dec %r12d
    jz 2f
    PRINT "."
    jmp 1b
2:  pop %r12
    pop %rbx
    ret

# print_mac: RSI = six bytes; "xx:xx:xx:xx:xx:xx". Clobbers RAX, RCX, RDX, RSI, RDI, R8.
print_mac:
    push %rbx
    push %r12
    mov %rsi, %rbx
    xor %r12d, %r12d
1:  movzbl (%rbx, %r12), %eax
    shl $56, %rax
    mov $2, %esi
    call print_hex_digits
    inc %r12d
    cmp $6, %r12d
    je 2f
    PRINT ":"
    jmp 1b
2:  pop %r12
    pop %rbx
    ret

    .section .rodata
key_ip:           .asciz "ip="
.set key_ip_len, 3
key_peer:         .asciz "peer="
.set key_peer_len, 5
key_nic:          .asciz "nic="
.set key_nic_len, 4
nic_name_virtio:  .asciz "virtio"
nic_name_rtl8139: .asciz "rtl8139"
    .text
