# virtio_blk.S — a virtio-blk driver over either transport, on the shared virtio code
# (virtio.S): the request virtqueue, requests, completion by interrupt.
# Teaches: what makes virtio cheap to virtualize. The driver and the device share rings in
# guest memory: the driver writes descriptors (buffer, length, flags) and puts a chain's head
# in the available ring, then rings the doorbell — one register write, one VM exit — for as
# many requests as it has queued. The device takes them all, writes the data, puts each head
# in the used ring and raises one interrupt. Batching is the whole trick: a notification
# and an interrupt per batch instead of an exit per register access (compare ata.S).
#
# Features accepted when offered: VERSION_1 (required), INDIRECT_DESC (a request's three
# descriptors in a table of their own, so one ring entry per request and a queue of 128
# holds 128 requests, not 42), EVENT_IDX (the driver names the used index it wants an
# interrupt for: here the last of the batch), and virtio-blk's FLUSH and RO.
#
# A request (virtio 1.2 section 5.2.6): a 16-byte header the device reads (type: 0 IN,
# 1 OUT, 4 FLUSH; reserved; sector), the data (device-writable for IN), and one status byte
# the device writes (0 OK, 1 IOERR, 2 UNSUPP). Slot j of a batch uses header j, status j
# and data at DISK_DATA + j × request bytes; all requests of a batch complete before the
# next batch is built, so slots are reused without bookkeeping.

.set VIRTIO_DEVICE_BLOCK, 2
.set VIRTIO_PCI_IDS_BLOCK, ((VIRTIO_PCI_MODERN + VIRTIO_DEVICE_BLOCK) << 16) | VIRTIO_PCI_VENDOR
.set VF_BLK_RO,       5
.set VF_BLK_FLUSH,    9
.set VQ_DRIVER_FEATURES, (1 << VF_VERSION_1) | (1 << VF_EVENT_IDX) | (1 << VF_INDIRECT_DESC) | (1 << VF_BLK_FLUSH) | (1 << VF_BLK_RO)
.set VIRTIO_BLK_T_IN, 0
.set VIRTIO_BLK_T_OUT, 1
.set VIRTIO_BLK_T_FLUSH, 4
.set VIRTIO_TIMEOUT_TICKS, 200      # 2 s of timer interrupts

    .code64
    .text
# virtio_blk_probe_pci / virtio_blk_probe_mmio: RAX = 1 if the transport has a virtio-blk
# device (blk_dev filled in, nothing written to the device), else 0 (disk.S asks). Clobber
# like the transports' probes.
virtio_blk_probe_pci:
    mov $VIRTIO_PCI_IDS_BLOCK, %edi
    lea blk_dev(%rip), %rsi
    jmp virtio_pci_probe
virtio_blk_probe_mmio:
    mov $VIRTIO_DEVICE_BLOCK, %edi
    lea blk_dev(%rip), %rsi
    jmp virtio_mmio_probe

# virtio_blk_init: bring up the device a probe found (blk_dev): features, queue 0, capacity
# (disk_sectors), the interrupt, DRIVER_OK; disk_slots = the requests a batch may hold.
# Stops the kernel with a message if the device refuses.
virtio_blk_init:
    push %rbx
    push %r12
    lea blk_dev(%rip), %rdi
    movabs $VQ_DRIVER_FEATURES, %rsi
    call virtio_start               # virtio.S: reset ... FEATURES_OK
    cmp $-1, %rax
    je 7f
    cmp $-2, %rax
    je 8f
    mov %rax, blk_features(%rip)    # the ones this driver uses
    mov %rdx, blk_offered(%rip)
    mov $VQ_DESC, %edi              # empty rings: flags 0, indices 0
    mov $(VQ_INDIRECT + 48 * BATCH_MAX - VQ_DESC) / 8, %ecx
    xor %eax, %eax
    rep stosq
    mov $VQ_WANT_SIZE, %edi
    lea blk_vq(%rip), %rsi
    VT VT_SETUP_QUEUE, blk_dev(%rip)
    test %eax, %eax
    jz 9f
1:  VT VT_GENERATION, blk_dev(%rip)  # capacity: 64 bits read as two dwords, again if
    mov %eax, %r12d                 # the device changed its configuration meanwhile
    mov $4, %edi
    VT VT_CONFIG32, blk_dev(%rip)
    mov %eax, %ebx
    shl $32, %rbx
    xor %edi, %edi
    VT VT_CONFIG32, blk_dev(%rip)
    or %rax, %rbx
    VT VT_GENERATION, blk_dev(%rip)
    cmp %eax, %r12d
    jne 1b
    mov %rbx, disk_sectors(%rip)
    cmpq $0, net_wake(%rip)         # a NIC that wakes its receiver on this line gives it up:
    je 3f                           # one vector per IOAPIC input (net.S: net_irq_route)
    mov blk_dev + VD_GSI(%rip), %rax
    cmp net_gsi(%rip), %rax
    jne 3f
    movq $0, net_wake(%rip)
3:  call apic_enable                # the interrupt: GSI → IOAPIC → vector, level-triggered
    mov $VECTOR_VIRTIO, %edi
    mov $virtio_interrupt, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    mov blk_dev + VD_GSI(%rip), %rdi
    mov $VECTOR_VIRTIO | REDIR_LEVEL, %esi
    call ioapic_route
    test %rax, %rax
    jnz 6f
    lea blk_dev(%rip), %rdi
    call virtio_driver_ok
    mov blk_vq + Q_SIZE(%rip), %rax # a request takes one ring entry with INDIRECT_DESC,
    btq $VF_INDIRECT_DESC, blk_features(%rip)   # else three
    jc 2f
    xor %edx, %edx
    mov $3, %ecx
    div %rcx
2:  mov %rax, disk_slots(%rip)
    movq $0, blk_vq + Q_AVAIL_IDX(%rip)
    movq $0, blk_vq + Q_USED_IDX(%rip)
    pop %r12
    pop %rbx
    ret
6:  PRINT "disk: the IOAPIC has no input for gsi "
    mov blk_dev + VD_GSI(%rip), %rax
    call print_u64
    PRINT "\n"
    EXIT EXIT_NO_DISK
7:  PRINT "disk: the virtio device does not offer VIRTIO_F_VERSION_1 (a legacy-only device)\n"
    EXIT EXIT_NO_DISK
8:  PRINT "disk: the virtio device refused the features (FEATURES_OK did not stick)\n"
    EXIT EXIT_NO_DISK
9:  PRINT "disk: the virtio device has no usable queue 0\n"
    EXIT EXIT_NO_DISK

# virtio_blk_describe: where the disk is, for the disk line (the transport's VT_DESCRIBE).
virtio_blk_describe:
    VT VT_DESCRIBE, blk_dev(%rip)
    ret

# virtio_describe_features: ", features 0x..., queue N[, indirect][, event_idx]..." for the
# disk line.
virtio_describe_features:
    PRINT ", features 0x"
    mov blk_features(%rip), %rax
    call print_hex
    PRINT " of 0x"
    mov blk_offered(%rip), %rax
    call print_hex
    PRINT ", queue of "
    mov blk_vq + Q_SIZE(%rip), %rax
    call print_u64
    btq $VF_INDIRECT_DESC, blk_features(%rip)
    jnc 1f
    PRINT ", indirect descriptors"
1:  btq $VF_EVENT_IDX, blk_features(%rip)
    jnc 2f
    PRINT ", event index"
2:  btq $VF_BLK_RO, blk_features(%rip)
    jnc 3f
    PRINT ", read-only"
3:  ret

# virtio_blk_read / virtio_blk_write: RDI = k requests; the driver's rw operations (disk.S).
virtio_blk_read:
    mov $VIRTIO_BLK_T_IN, %esi
    jmp virtio_blk_submit
virtio_blk_write:
    mov $VIRTIO_BLK_T_OUT, %esi
    jmp virtio_blk_submit
# virtio_blk_flush: one FLUSH request, if the device offered the command (else it writes
# through, and every completed write is already on the disk).
virtio_blk_flush:
    btq $VF_BLK_FLUSH, blk_features(%rip)
    jnc 1f
    mov $1, %edi
    mov $VIRTIO_BLK_T_FLUSH, %esi
    jmp virtio_blk_submit
1:  ret

# ANCHOR: virtio_submit
# virtio_blk_submit: RDI = k requests (1 ≤ k ≤ disk_slots), ESI = the type. Request j is for
# the sector in disk_sector_list[j] and the data at DISK_DATA + j × disk_request (FLUSH: no
# data). Builds the chains, publishes them with one available index update, rings the
# doorbell once, sleeps until the interrupt for the last completion, then checks every
# status byte. Clobbers RAX, RCX, RDX, RSI, RDI, R8-R11.
virtio_blk_submit:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rdi, %r12                  # R12 = k
    mov %esi, %r13d                 # R13 = type
    xor %ebx, %ebx                  # RBX = j
1:  cmp %r12, %rbx
    jae 5f
    mov %rbx, %r8
    shl $4, %r8
    add $VQ_HEADERS, %r8            # R8 = header j
    mov %r13d, (%r8)
    movl $0, 4(%r8)
    xor %eax, %eax
    cmp $VIRTIO_BLK_T_FLUSH, %r13d
    je 2f
    mov DISK_SECTOR_LIST(, %rbx, 8), %rax
2:  mov %rax, 8(%r8)                # the sector (0 for FLUSH)
    lea VQ_STATUS(%rbx), %r9        # R9 = status byte j, 0xFF until the device writes it
    movb $0xFF, (%r9)
    mov disk_request(%rip), %r10
    imul %rbx, %r10
    add $DISK_DATA, %r10            # R10 = data j
    imul $48, %rbx, %rdi            # three descriptors per request, 48 bytes
    btq $VF_INDIRECT_DESC, blk_features(%rip)
    jc 3f
    add $VQ_DESC, %rdi              # direct: descriptors 3j .. 3j + 2 of the ring's table
    lea (%rbx, %rbx, 2), %r11       # R11 = the chain's first index = its head
    mov %r11, %r14
    jmp 4f
3:  add $VQ_INDIRECT, %rdi          # indirect: a table of three for request j, ...
    xor %r11d, %r11d                # ... indexed from 0 inside it
    mov %rbx, %r14                  # R14 = the head: ring descriptor j names the table
4:  mov %r8, (%rdi)                 # header: device-readable
    movl $16, 8(%rdi)
    lea 1(%r11), %eax
    shl $16, %eax
    or $VIRTQ_DESC_F_NEXT, %eax
    mov %eax, 12(%rdi)              # flags (15:0) and next (31:16)
    mov $2, %ecx                    # ECX = descriptors in the chain
    cmp $VIRTIO_BLK_T_FLUSH, %r13d
    je 6f
    mov %r10, 16(%rdi)              # data: device-writable for IN
    mov disk_request(%rip), %eax
    mov %eax, 24(%rdi)
    lea 2(%r11), %eax
    shl $16, %eax
    or $VIRTQ_DESC_F_NEXT, %eax
    cmp $VIRTIO_BLK_T_IN, %r13d
    jne 7f
    or $VIRTQ_DESC_F_WRITE, %eax
7:  mov %eax, 28(%rdi)
    add $16, %rdi
    inc %ecx
6:  mov %r9, 16(%rdi)               # status: device-writable, the end of the chain
    movl $1, 24(%rdi)
    movl $VIRTQ_DESC_F_WRITE, 28(%rdi)
    btq $VF_INDIRECT_DESC, blk_features(%rip)
    jnc 8f
    imul $48, %rbx, %rax            # ring descriptor j: the indirect table
    add $VQ_INDIRECT, %rax
    mov %rbx, %rdx
    shl $4, %rdx
    mov %rax, VQ_DESC(%rdx)
    shl $4, %ecx
    mov %ecx, VQ_DESC + 8(%rdx)
    movl $VIRTQ_DESC_F_INDIRECT, VQ_DESC + 12(%rdx)
8:  mov blk_vq + Q_AVAIL_IDX(%rip), %rax    # avail.ring[(idx + j) mod size] = head
    add %rbx, %rax
    mov blk_vq + Q_SIZE(%rip), %rcx
    dec %rcx
    and %rcx, %rax
    mov %r14w, VQ_AVAIL + 4(, %rax, 2)
    inc %rbx
    jmp 1b
5:  btq $VF_EVENT_IDX, blk_features(%rip)
    jnc 1f
    mov blk_vq + Q_USED_IDX(%rip), %rax # used_event: interrupt me when the used index
    lea -1(%rax, %r12), %rax        # passes the last request of this batch — once, not k times
    mov blk_vq + Q_SIZE(%rip), %rcx
    mov %ax, VQ_AVAIL + 4(, %rcx, 2)
1:  mov blk_vq + Q_AVAIL_IDX(%rip), %rcx  # RCX = the old available index
    lea (%rcx, %r12), %rdx          # RDX = the new one
    mov %dx, VQ_AVAIL + 2           # publish all k at once (x86 keeps stores in order)
    mov %rdx, blk_vq + Q_AVAIL_IDX(%rip)
    mfence                          # the index must be visible before we read the device's
    mov vq_irqs(%rip), %r14         # wish below; R14 = interrupts before the doorbell
    btq $VF_EVENT_IDX, blk_features(%rip)
    jnc 2f
    mov blk_vq + Q_SIZE(%rip), %rax # EVENT_IDX: notify if the device's avail_event lies
    movzwl VQ_USED + 4(, %rax, 8), %eax # in (old, new]: vring_need_event(event, new, old)
    mov %edx, %esi
    sub %eax, %esi
    dec %esi                        # (new - event - 1) mod 2^16 ...
    sub %ecx, %edx                  # ... < (new - old) mod 2^16
    movzwl %si, %esi
    movzwl %dx, %edx
    cmp %edx, %esi
    jae 3f
    jmp 4f
2:  testw $VIRTQ_USED_F_NO_NOTIFY, VQ_USED
    jnz 3f
4:  lea blk_vq(%rip), %rsi
    VT VT_NOTIFY, blk_dev(%rip)     # the doorbell: one exit for the whole batch
    incq disk_kicks(%rip)
3:  mov blk_vq + Q_USED_IDX(%rip), %r13
    add %r12, %r13
    movzwl %r13w, %r13d             # R13 = the used index when all k are done
    mov ticks(%rip), %r15
    add $VIRTIO_TIMEOUT_TICKS, %r15 # R15 = when to give up
1:  cli                             # sleep until the interrupt: check, then STI; HLT (no
    movzwl VQ_USED + 2, %eax        # interrupt can slip in between: STI takes effect
    cmp %r13d, %eax                 # after the next instruction)
    jne 2f
    cmp vq_irqs(%rip), %r14
    jne 3f
2:  mov ticks(%rip), %rax
    cmp %r15, %rax
    jae 9f
    sti
    hlt
    jmp 1b
3:  sti
# ANCHOR_END: virtio_submit
    add %r12, blk_vq + Q_USED_IDX(%rip)
    xor %ebx, %ebx
1:  cmp %r12, %rbx
    jae 2f
    movzbl VQ_STATUS(%rbx), %eax
    test %eax, %eax
    jnz 8f
    inc %rbx
    jmp 1b
2:  pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
8:  mov %rax, %r12                  # the status
    PRINT "disk: virtio-blk "
    mov %rbx, %rax
    shl $4, %rax
    mov VQ_HEADERS(%rax), %eax
    call print_request_type
    PRINT " of sector "
    mov %rbx, %rax
    shl $4, %rax
    mov VQ_HEADERS + 8(%rax), %rax
    call print_u64
    PRINT " failed: status "
    mov %r12, %rax
    call print_u64
    cmp $1, %r12
    jne 1f
    PRINT " (IOERR)"
1:  cmp $2, %r12
    jne 2f
    PRINT " (UNSUPP)"
2:  PRINT "\n"
    EXIT EXIT_DISK_ERROR
9:  sti
    PRINT "disk: the virtio device completed nothing within 2 s: used index "
    movzwl VQ_USED + 2, %eax
    call print_u64
    PRINT ", expected "
    mov %r13, %rax
    call print_u64
    PRINT ", interrupts "
    mov vq_irqs(%rip), %rax
    sub %r14, %rax
    call print_u64
    PRINT ", device status 0x"
    VT VT_GET_STATUS, blk_dev(%rip)
    call print_hex
    PRINT "\n"
    EXIT EXIT_DISK_ERROR

# print_request_type: EAX = a virtio-blk request type, printed as a word.
print_request_type:
    cmp $VIRTIO_BLK_T_IN, %eax
    jne 1f
    PRINT "read"
    ret
1:  cmp $VIRTIO_BLK_T_OUT, %eax
    jne 2f
    PRINT "write"
    ret
2:  PRINT "flush"
    ret

# virtio_interrupt: the device's GSI. Reading the ISR acknowledges it and lowers the line;
# the EOI then lets the IOAPIC look at the line again. Any register it touches is saved.
virtio_interrupt:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    VT VT_ISR, blk_dev(%rip)
    or %rax, vq_isr_bits(%rip)
    test %eax, %eax
    jnz 1f
    incq vq_irqs_empty(%rip)        # not ours (a shared line), or already acknowledged
1:  incq vq_irqs(%rip)
    incq disk_irqs(%rip)
    call lapic_eoi
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq
