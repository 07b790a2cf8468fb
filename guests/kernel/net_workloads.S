# net_workloads.S — the network workloads on net.S's stack: ping, pong, udp-send, udp-recv
# (net.S's header says what each sends, waits for and folds into its checksum).
# Teaches: a workload is a loop around net_receive and the NIC operations; what it costs per
# packet is the driver's business (virtio_net.S, rtl8139.S).

    .code64
    .text
# The workloads (workloads.S calls them): RDI = N; RAX = the checksum.
# ANCHOR: ping
# k_ping: N echo requests to the peer, one at a time, each waiting up to PING_TICKS for its
# reply (anything else that arrives meanwhile is answered or dropped).
k_ping:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rdi, %r12                  # R12 = N
    mov $1, %ebx                    # RBX = the sequence number
    movabs $FNV_OFFSET, %r13        # R13 = the checksum
    movabs $FNV_PRIME, %r14
1:  cmp %r12, %rbx
    ja 9f
    NIC NIC_TX_BUF
    push %rax
    mov %rax, %rdi
    lea peer_mac(%rip), %rsi
    mov net_peer_ip(%rip), %edx
    mov $IPPROTO_ICMP, %ecx
    mov $8 + PING_PAYLOAD, %r8d
    call net_ip_frame
    movl $ICMP_ECHO_REQUEST, (%rdi) # type 8, code 0, checksum 0 for now
    movw $(PING_ID >> 8) | ((PING_ID & 0xFF) << 8), 4(%rdi)
    mov %bx, %ax
    xchg %al, %ah
    mov %ax, 6(%rdi)
    mov %rbx, %rax                  # the payload: word i = seq << 32 | i
    shl $32, %rax
    xor %ecx, %ecx
2:  mov %rax, 8(%rdi, %rcx, 8)
    inc %rax
    inc %ecx
    cmp $PING_PAYLOAD / 8, %ecx
    jb 2b
    mov %rdi, %rsi
    mov $8 + PING_PAYLOAD, %ecx
    push %rdi
    call inet_checksum
    pop %rdi
    mov %ax, 2(%rdi)
    pop %rax
    mov $ETH_HLEN + IP_HLEN + 8 + PING_PAYLOAD, %ecx
    NIC NIC_TX_SEND
    NIC NIC_TX_KICK
    mov ticks(%rip), %r15
    add $PING_TICKS, %r15
3:  mov %r15, %rdi
    call net_receive
    cmp $NET_IN_TIMEOUT, %eax
    je 6f
    cmp $NET_IN_OTHER, %eax
    je 3b
    cmp $NET_IN_ECHO_REPLY, %eax
    jne 5f
    cmp $PING_ID, %r8d
    jne 5f
    cmp %ebx, %edx
    jne 5f
    push %r9
    call net_fold                   # the reply's payload
    NIC NIC_RX_DONE
    PRINT "ping: reply from "
    pop %rax
    call print_ipv4
    PRINT " seq="
    mov %rbx, %rax
    call print_u64
    PRINT "\n"
    inc %rbx
    jmp 1b
5:  NIC NIC_RX_DONE                 # an echo or a datagram that is not our reply
    jmp 3b
6:  PRINT "ping: timeout seq="
    mov %rbx, %rax
    call print_u64
    PRINT "\n"
    inc %rbx
    jmp 1b
9:  mov %r13, %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
# ANCHOR_END: ping

# k_pong: answer until N echo requests to us were answered (net_input sends each reply; this
# counts and folds them), then wait until the last reply has left the NIC.
k_pong:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rdi, %r12                  # R12 = N
    xor %ebx, %ebx                  # RBX = requests answered
    movabs $FNV_OFFSET, %r13
    movabs $FNV_PRIME, %r14
1:  cmp %r12, %rbx
    jae 8f
    mov ticks(%rip), %r15
    add $IDLE_TICKS, %r15
2:  mov %r15, %rdi
    call net_receive
    cmp $NET_IN_TIMEOUT, %eax
    je 7f
    cmp $NET_IN_OTHER, %eax
    je 2b
    cmp $NET_IN_ECHO_REQUEST, %eax
    jne 5f
    push %rdx
    push %r9
    call net_fold                   # the request's payload
    NIC NIC_RX_DONE
    PRINT "pong: echo request from "
    pop %rax
    call print_ipv4
    PRINT " seq="
    pop %rax
    call print_u64
    PRINT "\n"
    inc %rbx
    jmp 1b
5:  NIC NIC_RX_DONE
    jmp 2b
7:  PRINT "pong: timeout after "
    lea pong_what(%rip), %rdi
    jmp net_idle_timeout
8:  NIC NIC_TX_DRAIN                # the last reply out before the kernel moves on (or exits)
    mov %r13, %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret

# net_idle_timeout: RBX = what arrived, R12 = what was expected, RDI = what they are (a
# string); "K of N <what>\n", then EXIT_NET_TIMEOUT.
net_idle_timeout:
    push %rdi
    mov %rbx, %rax
    call print_u64
    PRINT " of "
    mov %r12, %rax
    call print_u64
    pop %rsi
    call serial_puts
    PRINT " in 10 s\n"
    EXIT EXIT_NET_TIMEOUT

# ANCHOR: udp_send
# k_udp_send: N datagrams of UDP_PAYLOAD bytes to the peer's discard port, as fast as the
# NIC takes them: virtio-net rings its doorbell only when the transmitq is full (NIC_TX_BUF)
# and at the end (NIC_TX_DRAIN), which also waits until the last frame is out.
k_udp_send:
    push %rbx
    push %r12
    push %r13
    push %r14
    mov %rdi, %r12                  # R12 = N
    xor %ebx, %ebx                  # RBX = the datagram
    movabs $FNV_OFFSET, %r13
    movabs $FNV_PRIME, %r14
1:  cmp %r12, %rbx
    jae 9f
    NIC NIC_TX_BUF
    mov %rax, %rdi
    lea peer_mac(%rip), %rsi
    mov net_peer_ip(%rip), %edx
    mov $IPPROTO_UDP, %ecx
    mov $8 + UDP_PAYLOAD, %r8d
    call net_ip_frame
    movw $(UDP_SRC_PORT >> 8) | ((UDP_SRC_PORT & 0xFF) << 8), (%rdi)
    movw $UDP_DISCARD << 8, 2(%rdi)
    movw $((8 + UDP_PAYLOAD) >> 8) | (((8 + UDP_PAYLOAD) & 0xFF) << 8), 4(%rdi)
    movw $0, 6(%rdi)                # no UDP checksum (allowed over IPv4)
    mov %rbx, %rax                  # word i = k << 32 | i, folded as it is written
    shl $32, %rax
    mov $UDP_PAYLOAD / 8, %ecx
2:  mov %rax, 8(%rdi)
    xor %rax, %r13
    imul %r14, %r13
    inc %rax
    add $8, %rdi
    dec %ecx
    jnz 2b
    mov $ETH_HLEN + IP_HLEN + 8 + UDP_PAYLOAD, %ecx
    NIC NIC_TX_SEND
    inc %rbx
    jmp 1b
9:  NIC NIC_TX_DRAIN
    mov %r13, %rax
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
# ANCHOR_END: udp_send

# k_udp_recv: fold the payloads of N datagrams to our port UDP_DISCARD, in arrival order.
k_udp_recv:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rdi, %r12
    xor %ebx, %ebx                  # RBX = datagrams received
    movabs $FNV_OFFSET, %r13
    movabs $FNV_PRIME, %r14
1:  cmp %r12, %rbx
    jae 9f
    mov ticks(%rip), %r15
    add $IDLE_TICKS, %r15
2:  mov %r15, %rdi
    call net_receive
    cmp $NET_IN_TIMEOUT, %eax
    je 7f
    cmp $NET_IN_OTHER, %eax
    je 2b
    cmp $NET_IN_UDP, %eax
    jne 5f
    cmp $UDP_DISCARD, %edx
    jne 5f
    call net_fold
    NIC NIC_RX_DONE
    inc %rbx
    jmp 1b
5:  NIC NIC_RX_DONE
    jmp 2b
7:  PRINT "udp-recv: timeout after "
    lea udp_what(%rip), %rdi
    jmp net_idle_timeout
9:  mov %r13, %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret

    .section .rodata
pong_what:        .asciz " echo requests"
udp_what:         .asciz " datagrams"
    .text
