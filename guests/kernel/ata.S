# ata.S — an ATA (IDE) disk driver, PIO: the primary channel's master at ports 0x1F0-0x1F7
# and 0x3F6, interrupting on IRQ 14.
# Teaches: the task-file interface every PC disk once spoke, and why it is the expensive way
# to virtualize a disk. A command is six to ten register writes (sector count, LBA bytes,
# device, command), each an OUT — each a VM exit under KVM; data moves through one 16-bit
# port (REP INSL/OUTSL here: the controller splits each 32-bit access into two 16-bit
# words, as PC chipsets do and Linux's 32-bit PIO uses — half the accesses of INSW; under
# KVM a REP string I/O exits once per few accesses or per page); and the device interrupts once per DRQ
# block — every sector, or every 16 with READ/WRITE MULTIPLE — and each interrupt costs a
# status read and two EOIs to the PICs. Compare virtio.S: one exit per batch of requests.
#
# Protocols (ATA8-ACS, PIO data-in/data-out):
#   read:  command → (interrupt, status: DRQ) → REP INSW one block → ... → the last block
#          (no interrupt after it). The status read in the handler acknowledges the interrupt.
#   write: command → DRQ (no interrupt for the first block) → REP OUTSW one block →
#          (interrupt, status: DRQ for the next block, or done) → ...
#   28-bit commands reach sectors below 2^28 with at most 256 sectors; the EXT commands take
#   48-bit addresses and counts up to 65536, as two bytes per register (high bytes first).
# The interrupt is IRQ 14 through the slave PIC (vector 0x2E); the timer stays the only other
# line the PICs let through.

.set ATA_DATA,      0x1F0
.set ATA_ERROR,     0x1F1
.set ATA_COUNT,     0x1F2
.set ATA_LBA_LOW,   0x1F3
.set ATA_LBA_MID,   0x1F4
.set ATA_LBA_HIGH,  0x1F5
.set ATA_DEVICE,    0x1F6
.set ATA_STATUS,    0x1F7           # read: status (acknowledges the interrupt); write: command
.set ATA_ALT_STATUS, 0x3F6          # read: status without the acknowledge; write: device control
.set ATA_SR_BSY,    0x80
.set ATA_SR_DF,     0x20
.set ATA_SR_DRQ,    0x08
.set ATA_SR_ERR,    0x01
.set ATA_DEV_LBA,   0x40            # device register: LBA addressing, device 0
.set ATA_CMD_READ,          0x20
.set ATA_CMD_READ_EXT,      0x24
.set ATA_CMD_READ_MULTIPLE_EXT, 0x29
.set ATA_CMD_WRITE,         0x30
.set ATA_CMD_WRITE_EXT,     0x34
.set ATA_CMD_WRITE_MULTIPLE_EXT, 0x39
.set ATA_CMD_READ_MULTIPLE, 0xC4
.set ATA_CMD_WRITE_MULTIPLE, 0xC5
.set ATA_CMD_SET_MULTIPLE,  0xC6
.set ATA_CMD_FLUSH,         0xE7
.set ATA_CMD_FLUSH_EXT,     0xEA
.set ATA_CMD_IDENTIFY,      0xEC
.set ATA_LBA28_LAST, 0x0FFFFFFF     # 28-bit commands reach up to here
.set ATA_MAX_MULTIPLE, 16
.set ATA_TIMEOUT_TICKS, 200         # 2 s

    .section .rodata
# ata_commands: [write][multiple][ext] — the command byte for each kind of transfer.
ata_commands:
    .byte ATA_CMD_READ, ATA_CMD_READ_EXT, ATA_CMD_READ_MULTIPLE, ATA_CMD_READ_MULTIPLE_EXT
    .byte ATA_CMD_WRITE, ATA_CMD_WRITE_EXT, ATA_CMD_WRITE_MULTIPLE, ATA_CMD_WRITE_MULTIPLE_EXT

    .code64
    .text
# ata_probe: RAX = 1 if a device answers as the primary master, else 0. An empty channel
# reads all ones (nothing drives the bus) or 0 (QEMU's controller without drives); a device
# keeps what is written to its sector-count and LBA registers. Clobbers RCX, RDX.
ata_probe:
    mov $ATA_DEVICE, %dx
    mov $0xA0, %al                  # select device 0 (bits 7 and 5: obsolete, always 1)
    out %al, %dx
    mov $ATA_ALT_STATUS, %dx
    in %dx, %al                     # 400 ns for the selection to settle
    in %dx, %al
    in %dx, %al
    in %dx, %al
    mov $ATA_STATUS, %dx
    in %dx, %al
    cmp $0xFF, %al
    je 9f
    test %al, %al
    jz 9f
    mov $ATA_COUNT, %dx
    mov $0x55, %al
    out %al, %dx
    mov $ATA_LBA_LOW, %dx
    mov $0xAA, %al
    out %al, %dx
    mov $ATA_COUNT, %dx
    in %dx, %al
    cmp $0x55, %al
    jne 9f
    mov $ATA_LBA_LOW, %dx
    in %dx, %al
    cmp $0xAA, %al
    jne 9f
    mov $1, %eax
    ret
9:  xor %eax, %eax
    ret

# ata_init: interrupts on (device control nIEN = 0, IRQ 14 unmasked at both PICs),
# IDENTIFY DEVICE (disk_sectors, LBA48), READ/WRITE MULTIPLE when the drive has them.
ata_init:
    push %rbx
    mov $ATA_ALT_STATUS, %dx        # device control: nIEN = 0, no reset
    xor %eax, %eax
    out %al, %dx
    mov $VECTOR_ATA, %edi
    mov $ata_interrupt, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    in $PIC2_DATA, %al              # unmask IRQ 14 at the slave ...
    and $~(1 << 6), %al
    out %al, $PIC2_DATA
    in $PIC1_DATA, %al              # ... and the slave's line (IRQ 2) at the master
    and $~(1 << 2), %al
    out %al, $PIC1_DATA
    call ata_wait_idle
    mov disk_irqs(%rip), %rbx
    mov $ATA_DEVICE, %dx
    mov $0xA0 | ATA_DEV_LBA, %al
    out %al, %dx
    mov $ATA_STATUS, %dx
    mov $ATA_CMD_IDENTIFY, %al
    out %al, %dx
    incq disk_kicks(%rip)
    mov %rbx, %rsi
    call ata_wait_irq
    test $ATA_SR_ERR, %al
    jnz 8f
    test $ATA_SR_DRQ, %al
    jz 8f
    mov $ATA_IDENTIFY, %edi
    mov $256, %ecx
    mov $ATA_DATA, %dx
    rep insw
    movzwl ATA_IDENTIFY + 83 * 2, %eax
    bt $10, %eax                    # word 83 bit 10: the 48-bit address feature set
    jnc 1f
    movq $1, ata_lba48_ok(%rip)
    mov ATA_IDENTIFY + 100 * 2, %rax  # words 100-103: sectors for 48-bit commands
    jmp 2f
1:  mov ATA_IDENTIFY + 60 * 2, %eax   # words 60-61: sectors for 28-bit commands
2:  mov %rax, disk_sectors(%rip)
    movzbl ATA_IDENTIFY + 47 * 2, %ecx  # word 47 bits 7:0: the largest DRQ block, sectors
    mov ata_multiple_arg(%rip), %rax    # multiple=N is stored as N + 1 (0: not given)
    test %rax, %rax
    jz 3f
    dec %rax
    cmp %rcx, %rax
    jbe 4f
3:  mov %rcx, %rax                  # the drive's largest (or what it allows of multiple=)
    cmp $ATA_MAX_MULTIPLE, %rax
    jbe 4f
    mov $ATA_MAX_MULTIPLE, %eax
4:  test %eax, %eax
    jz 5f
    bsr %eax, %ecx                  # a power of two
    mov $1, %eax
    shl %cl, %eax
    mov %rax, ata_multiple(%rip)
    call ata_wait_idle
    mov disk_irqs(%rip), %rbx
    mov ata_multiple(%rip), %rax
    mov $ATA_COUNT, %dx
    out %al, %dx
    mov $ATA_STATUS, %dx
    mov $ATA_CMD_SET_MULTIPLE, %al
    out %al, %dx
    incq disk_kicks(%rip)
    mov %rbx, %rsi
    call ata_wait_irq
    test $ATA_SR_ERR, %al
    jz 5f
    movq $0, ata_multiple(%rip)     # refused: one sector per interrupt it is
5:  movq $BATCH_MAX, disk_slots(%rip)   # a batch is done one request after the other
    pop %rbx
    ret
8:  PRINT "disk: the IDE device did not answer IDENTIFY DEVICE (not an ATA disk)\n"
    EXIT EXIT_NO_DISK

# ata_describe: the "where" part of the disk line.
ata_describe:
    PRINT "ide primary master, irq 14"
    cmpq $0, ata_lba48_ok(%rip)
    je 1f
    PRINT ", LBA48"
1:  PRINT ", "
    mov ata_multiple(%rip), %rax
    test %rax, %rax
    jnz 2f
    inc %rax
2:  push %rax
    call print_u64
    pop %rax
    cmp $1, %rax
    jne 4f
    PRINT " sector per interrupt"
    jmp 5f
4:  PRINT " sectors per interrupt"
5:
    cmpq $0, ata_multiple(%rip)
    je 3f
    PRINT " (READ/WRITE MULTIPLE)"
3:  ret

# ata_wait_idle: poll the alternate status (no acknowledge) until BSY is clear.
# Clobbers RAX, RCX, RDX.
ata_wait_idle:
    mov ticks(%rip), %rcx
    add $ATA_TIMEOUT_TICKS, %rcx
    mov $ATA_ALT_STATUS, %dx
1:  in %dx, %al
    test $ATA_SR_BSY, %al
    jz 2f
    cmp ticks(%rip), %rcx
    ja 1b
    jmp ata_timeout
2:  ret

# ata_wait_irq: RSI = disk_irqs before the action that makes the device interrupt; sleeps
# until the handler has run since. EAX = the status it read. Clobbers RAX, RCX.
ata_wait_irq:
    mov ticks(%rip), %rcx
    add $ATA_TIMEOUT_TICKS, %rcx
1:  cli                             # STI; HLT: no interrupt slips in between
    cmp disk_irqs(%rip), %rsi
    jne 2f
    cmp ticks(%rip), %rcx
    jbe ata_timeout
    sti
    hlt
    jmp 1b
2:  sti
    movzbl ata_status(%rip), %eax
    ret

ata_timeout:
    sti
    PRINT "disk: the IDE device did not interrupt within 2 s (status 0x"
    mov $ATA_ALT_STATUS, %dx
    in %dx, %al
    movzbl %al, %eax
    call print_hex
    PRINT ")\n"
    EXIT EXIT_DISK_ERROR

# ata_read / ata_write: RDI = k requests; request j moves disk_request bytes between sector
# DISK_SECTOR_LIST[j] and DISK_DATA + j × disk_request, one command each.
ata_read:
    xor %esi, %esi
    jmp ata_requests
ata_write:
    mov $1, %esi
ata_requests:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12                  # R12 = k
    mov %esi, %r13d                 # R13 = write?
    xor %ebx, %ebx
1:  cmp %r12, %rbx
    jae 2f
    mov DISK_SECTOR_LIST(, %rbx, 8), %rdi
    mov disk_request(%rip), %rsi
    mov %rsi, %rdx
    imul %rbx, %rdx
    add $DISK_DATA, %rdx
    shr $9, %rsi
    mov %r13d, %ecx
    call ata_transfer
    inc %rbx
    jmp 1b
2:  pop %r13
    pop %r12
    pop %rbx
    ret

# ANCHOR: ata_transfer
# ata_transfer: RDI = first sector, RSI = sectors (1-65536), RDX = buffer, ECX = 1 to write.
# One command; a 48-bit one when the range needs it or lba48=1 asks. Clobbers RAX, RCX,
# RDX, RSI, RDI, R8-R11.
ata_transfer:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rdi, %r12                  # R12 = sector
    mov %rsi, %r13                  # R13 = sectors left
    mov %rdx, %r14                  # R14 = buffer
    mov %ecx, %r15d                 # R15 = write?
    mov %ecx, %r8d                  # R8 = the command's index in ata_commands
    shl $2, %r8d
    cmpq $0, ata_multiple(%rip)
    je 1f
    or $2, %r8d
1:  xor %r9d, %r9d                  # R9 = 48-bit?
    cmpq $0, ata_lba48_arg(%rip)
    jne 2f
    cmp $256, %r13
    ja 2f
    lea (%r12, %r13), %rax
    cmp $ATA_LBA28_LAST + 1, %rax
    jbe 3f
2:  cmpq $0, ata_lba48_ok(%rip)
    je ata_no_lba48
    inc %r9d
    or $1, %r8d
3:  call ata_wait_idle
    mov disk_irqs(%rip), %rbx       # RBX = interrupts before the command
    test %r9d, %r9d
    jz 4f
    mov %r13, %rax                  # 48-bit: the high bytes first, each register twice
    shr $8, %eax
    mov $ATA_COUNT, %dx
    out %al, %dx
    mov %r12, %rax
    shr $24, %rax
    mov $ATA_LBA_LOW, %dx
    out %al, %dx
    shr $8, %rax
    mov $ATA_LBA_MID, %dx
    out %al, %dx
    shr $8, %rax
    mov $ATA_LBA_HIGH, %dx
    out %al, %dx
4:  mov %r13, %rax
    mov $ATA_COUNT, %dx             # 256 (28-bit) or 65536 (48-bit) are written as 0
    out %al, %dx
    mov %r12, %rax
    mov $ATA_LBA_LOW, %dx
    out %al, %dx
    shr $8, %rax
    mov $ATA_LBA_MID, %dx
    out %al, %dx
    shr $8, %rax
    mov $ATA_LBA_HIGH, %dx
    out %al, %dx
    mov $0xA0 | ATA_DEV_LBA, %eax   # 48-bit: the device register carries no address
    test %r9d, %r9d
    jnz 5f
    mov %r12, %rax
    shr $24, %rax
    and $0x0F, %eax                 # 28-bit: LBA bits 27:24
    or $0xA0 | ATA_DEV_LBA, %eax
5:  mov $ATA_DEVICE, %dx
    out %al, %dx
    lea ata_commands(%rip), %rax
    movzbl (%rax, %r8), %eax
    mov %eax, ata_command(%rip)
    mov $ATA_STATUS, %dx
    out %al, %dx                    # the command: the device starts now
    incq disk_kicks(%rip)
    mov $1, %r10d                   # R10 = sectors per DRQ block
    cmpq $0, ata_multiple(%rip)
    je 6f
    mov ata_multiple(%rip), %r10
6:  test %r15d, %r15d
    jnz 20f
# PIO data-in: an interrupt announces each block.
10: mov %rbx, %rsi
    call ata_wait_irq
    test $ATA_SR_ERR | ATA_SR_DF, %al
    jnz ata_failed
    test $ATA_SR_DRQ, %al
    jz ata_failed
    mov %r13, %rcx                  # this block: min(left, per block) sectors
    cmp %r10, %rcx
    jbe 11f
    mov %r10, %rcx
11: sub %rcx, %r13
    mov disk_irqs(%rip), %rbx       # the next block's interrupt comes during the last word
    shl $7, %rcx                    # dwords: 32-bit PIO, two 16-bit words per access
    mov %r14, %rdi
    mov $ATA_DATA, %dx
    rep insl
    mov %rdi, %r14
    test %r13, %r13
    jnz 10b
    mov $ATA_ALT_STATUS, %dx        # after the last block: no interrupt; the status must
    in %dx, %al                     # say neither error nor more data
    test $ATA_SR_ERR | ATA_SR_DF | ATA_SR_DRQ, %al
    jnz ata_failed
    jmp 30f
# PIO data-out: the first block is asked for by DRQ alone, each next one by an interrupt.
20: call ata_wait_idle
    test $ATA_SR_ERR | ATA_SR_DF, %al
    jnz ata_failed                  # refused at once (a read-only disk: ABRT)
    test $ATA_SR_DRQ, %al
    jz ata_failed
21: mov %r13, %rcx
    cmp %r10, %rcx
    jbe 22f
    mov %r10, %rcx
22: sub %rcx, %r13
    mov disk_irqs(%rip), %rbx
    shl $7, %rcx
    mov %r14, %rsi
    mov $ATA_DATA, %dx
    rep outsl
    mov %rsi, %r14
    mov %rbx, %rsi
    call ata_wait_irq               # the block is on the disk: next block, or done
    test $ATA_SR_ERR | ATA_SR_DF, %al
    jnz ata_failed
    test %r13, %r13
    jz 23f
    test $ATA_SR_DRQ, %al
    jz ata_failed
    jmp 21b
23: test $ATA_SR_DRQ, %al
    jnz ata_failed
30: pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
# ANCHOR_END: ata_transfer

ata_no_lba48:
    PRINT "disk: the request needs 48-bit commands, which the IDE device does not have\n"
    EXIT EXIT_DISK_ERROR

# ata_failed: AL = the status that told; R12 = the command's first sector.
ata_failed:
    movzbl %al, %ebx
    PRINT "disk: ide "
    mov ata_command(%rip), %eax
    cmp $ATA_CMD_FLUSH, %eax
    je 4f
    cmp $ATA_CMD_FLUSH_EXT, %eax
    je 4f
    cmp $ATA_CMD_WRITE_MULTIPLE, %eax
    je 5f
    and $0xF0, %eax                 # 0x30-0x3F: the WRITE SECTORS family
    cmp $0x30, %eax
    je 5f
    PRINT "read"
    jmp 6f
4:  PRINT "flush"
    jmp 6f
5:  PRINT "write"
6:  PRINT " (command 0x"
    mov ata_command(%rip), %rax
    call print_hex
    PRINT ") at sector "
    mov %r12, %rax
    call print_u64
    PRINT " failed: status 0x"
    mov %rbx, %rax
    call print_hex
    PRINT ", error 0x"
    mov $ATA_ERROR, %dx
    in %dx, %al
    movzbl %al, %ebx
    mov %rbx, %rax
    call print_hex
    test $0x04, %bl
    jz 1f
    PRINT " (ABRT)"
1:  test $0x10, %bl
    jz 2f
    PRINT " (IDNF)"
2:  test $0x40, %bl
    jz 3f
    PRINT " (UNC)"
3:  PRINT "\n"
    EXIT EXIT_DISK_ERROR

# ata_flush: FLUSH CACHE (EXT): the drive's write cache to the medium — on vmscope an fsync
# of the image file.
ata_flush:
    push %rbx
    push %r12
    xor %r12d, %r12d
    call ata_wait_idle
    mov disk_irqs(%rip), %rbx
    mov $ATA_CMD_FLUSH, %eax
    cmpq $0, ata_lba48_ok(%rip)
    je 1f
    mov $ATA_CMD_FLUSH_EXT, %eax
1:  mov %eax, ata_command(%rip)
    mov $ATA_STATUS, %dx
    out %al, %dx
    incq disk_kicks(%rip)
    mov %rbx, %rsi
    call ata_wait_irq
    test $ATA_SR_ERR | ATA_SR_DF, %al
    jnz ata_failed
    pop %r12
    pop %rbx
    ret

# ata_interrupt: IRQ 14. Reading the status register acknowledges the device (its line
# drops); then EOI to the slave PIC and to the master it hangs on.
ata_interrupt:
    push %rax
    push %rdx
    mov $ATA_STATUS, %dx
    in %dx, %al
    mov %al, ata_status(%rip)
    incq disk_irqs(%rip)
    mov $PIC_EOI, %al
    out %al, $PIC2_CMD
    out %al, $PIC1_CMD
    pop %rdx
    pop %rax
    iretq
