# disk.S — the disk workloads, disk-read and disk-write, and the choice of driver.
# Teaches: the same requests through three interfaces — fully emulated ATA (ata.S), and
# virtio-blk over virtio-mmio or virtio-pci (virtio_blk.S) — so that exits and interrupts per
# megabyte can be compared on every engine. Each workload does `iterations` requests of
# `request=` bytes, sequentially from sector 0 (the next request starts where the last one
# ended; one that would run past the end of the disk starts over at sector 0), in batches of
# up to `depth=` requests: virtio puts a whole batch in flight with one notification, ATA
# does one command after the other.
#
#   disk-read   reads, and folds every 8-byte word into the checksum:
#                   h = (h + word) × 0x9E3779B97F4A7C15   (mod 2^64, in disk order)
#               or, with verify=sectors, only the first word of every 512-byte sector: the
#               right sectors still have to arrive in the right order, but the guest no
#               longer spends most of an emulated run reading the data (what `vmscope
#               compare --io` wants to see is the cost of the device, not of the checksum)
#   disk-write  writes a pattern — each 8-byte word is its byte offset on the disk XOR
#               0xD15C0000D15C0000 —, flushes, reads it all back, checks every word and
#               folds what it read the same way.
# The host (src/compare/suite.rs) computes both checksums: disk-read's from the image it
# made, disk-write's from the pattern. Failures stop the kernel with a line saying why:
# no disk (EXIT_NO_DISK), an error status or no completion (EXIT_DISK_ERROR), data that
# did not come back (EXIT_DISK_MISMATCH).
#
# Command line: disk=ide|virtio-mmio|virtio-pci (default: the first found, in that order
# from the right: virtio-pci, virtio-mmio, ide), request=BYTES (a multiple of 512, default
# 4096), depth=N (requests per batch, default 32, at most 128), and for ATA multiple=N
# (sectors per interrupt, 0 = READ/WRITE SECTORS; default the drive's largest, ≤ 16),
# lba48=1 (48-bit commands even where 28-bit ones would do) and verify=words|sectors
# (what disk-read folds; default words).

.set DISK_AUTO,        0
.set DISK_IDE,         1
.set DISK_VIRTIO_MMIO, 2
.set DISK_VIRTIO_PCI,  3
.set DEFAULT_REQUEST,  4096
.set DEFAULT_DEPTH,    32
.set DISK_FOLD,        0x9E3779B97F4A7C15
.set DISK_WRITE_XOR,   0xD15C0000D15C0000

    .section .rodata
    .balign 8
disk_names:                         # by interface number
    .long 0, 0, disk_name_ide, 0, disk_name_mmio, 0, disk_name_pci, 0
disk_name_ide:  .asciz "ide"
disk_name_mmio: .asciz "virtio-mmio"
disk_name_pci:  .asciz "virtio-pci"
# The driver operations, per interface: read k, write k, flush, describe.
disk_drivers:
    .long 0, 0, 0, 0, 0, 0, 0, 0
    .long ata_read, 0, ata_write, 0, ata_flush, 0, ata_describe, 0
    .long virtio_blk_read, 0, virtio_blk_write, 0, virtio_blk_flush, 0, virtio_blk_describe, 0
    .long virtio_blk_read, 0, virtio_blk_write, 0, virtio_blk_flush, 0, virtio_blk_describe, 0
.set DRV_READ, 0
.set DRV_WRITE, 8
.set DRV_FLUSH, 16
.set DRV_DESCRIBE, 24

    .code64
    .text
# disk_find: EAX = the interface of the disk to use (disk= or the first one found), 0 if
# none. Looks, writes nothing to a disk. Clobbers RCX, RDX, RSI, RDI, R8-R11.
disk_find:
    mov disk_choice(%rip), %rax
    test %rax, %rax
    jz 1f
    cmp $DISK_VIRTIO_PCI, %eax
    je 2f
    cmp $DISK_VIRTIO_MMIO, %eax
    je 3f
    jmp 4f
1:  call virtio_blk_probe_pci       # nothing named: the fastest interface first
    test %eax, %eax
    jnz 5f
    call virtio_blk_probe_mmio
    test %eax, %eax
    jnz 6f
    jmp 4f
2:  call virtio_blk_probe_pci
    test %eax, %eax
    jnz 5f
    ret
3:  call virtio_blk_probe_mmio
    test %eax, %eax
    jnz 6f
    ret
4:  call ata_probe
    test %eax, %eax
    jz 9f
    mov $DISK_IDE, %eax
9:  ret
5:  mov $DISK_VIRTIO_PCI, %eax
    ret
6:  mov $DISK_VIRTIO_MMIO, %eax
    ret

# disk_open: the prepare step of both workloads (outside the timed region): find the disk,
# bring its driver up and print what it found — once per boot.
k_disk_prepare:
disk_open:
    cmpq $0, disk_kind(%rip)
    jne 9f
    push %rbx
    mov disk_request_arg(%rip), %rax
    test %rax, %rax
    jnz 1f
    mov $DEFAULT_REQUEST, %eax
1:  mov %rax, disk_request(%rip)
    call disk_find
    test %eax, %eax
    jz 8f
    mov %rax, disk_kind(%rip)
    cmp $DISK_IDE, %eax
    jne 2f
    call ata_init
    jmp 3f
2:  call virtio_blk_init
3:  mov disk_sectors(%rip), %rax
    shl $9, %rax
    mov %rax, disk_bytes(%rip)
    mov disk_depth_arg(%rip), %rax  # the batch: depth=, what the driver holds, the buffer
    test %rax, %rax
    jnz 4f
    mov $DEFAULT_DEPTH, %eax
4:  cmp disk_slots(%rip), %rax
    jbe 5f
    mov disk_slots(%rip), %rax
5:  mov %rax, %rbx
    mov $DISK_DATA_MAX, %eax
    xor %edx, %edx
    divq disk_request(%rip)
    cmp %rax, %rbx
    jbe 6f
    mov %rax, %rbx
6:  mov %rbx, disk_batch(%rip)
    PRINT "disk: "
    call disk_driver
    call *DRV_DESCRIBE(%rax)
    cmpq $DISK_IDE, disk_kind(%rip)
    je 7f
    call virtio_describe_features
7:  PRINT "; "
    mov disk_sectors(%rip), %rax
    call print_u64
    PRINT " sectors; requests of "
    mov disk_request(%rip), %rax
    call print_u64
    PRINT " bytes, up to "
    mov disk_batch(%rip), %rax
    call print_u64
    PRINT " per batch\n"
    mov disk_request(%rip), %rax
    cmp disk_bytes(%rip), %rax
    ja 10f
    pop %rbx
9:  ret
8:  PRINT "disk: no disk found"
    mov disk_choice(%rip), %rax
    test %rax, %rax
    jnz 11f
    PRINT " (looked for virtio-pci, virtio-mmio and ide); attach one: vmscope run kernel --disk FILE[,if=ide|virtio-mmio|virtio-pci]\n"
    EXIT EXIT_NO_DISK
11: PRINT " on "
    call disk_print_name
    PRINT "\n"
    EXIT EXIT_NO_DISK
10: PRINT "disk: request= is larger than the disk\n"
    EXIT EXIT_BAD_CMDLINE

# disk_driver: RAX = the open interface's row of disk_drivers.
disk_driver:
    mov disk_kind(%rip), %rax
    shl $5, %eax
    add $disk_drivers, %eax
    ret

# disk_print_name: the interface disk_kind (or else disk_choice) names. Clobbers like PRINT.
disk_print_name:
    mov disk_kind(%rip), %rax
    test %rax, %rax
    jnz 1f
    mov disk_choice(%rip), %rax
1:  lea disk_names(%rip), %rsi
    mov (%rsi, %rax, 8), %esi
    jmp serial_puts

# disk_plan: RDI = k; DISK_SECTOR_LIST[0..k) = the next k requests' first sectors, from
# disk_pos on (which moves on, wrapping to 0 before a request that would not fit).
disk_plan:
    xor %ecx, %ecx
    mov disk_request(%rip), %rdx
1:  cmp %rdi, %rcx
    jae 2f
    mov disk_pos(%rip), %rax
    mov %rax, %rsi
    shr $9, %rsi
    mov %rsi, DISK_SECTOR_LIST(, %rcx, 8)
    add %rdx, %rax                  # where the next one starts ...
    lea (%rax, %rdx), %rsi
    cmp disk_bytes(%rip), %rsi
    jbe 3f
    xor %eax, %eax                  # ... unless it would run past the end
3:  mov %rax, disk_pos(%rip)
    inc %rcx
    jmp 1b
2:  addq %rdi, disk_requests(%rip)
    incq disk_batches(%rip)
    ret

# disk_batch_size: RDI = requests left; RAX = the next batch's size.
disk_batch_size:
    mov disk_batch(%rip), %rax
    cmp %rdi, %rax
    jbe 1f
    mov %rdi, %rax
1:  ret

# ANCHOR: disk_fold
# disk_fold: RSI = a buffer, RCX = its length (a multiple of 8), RAX = the checksum so far;
# RAX = the checksum with every word of the buffer folded in. Clobbers RCX, RDX, RSI.
disk_fold:
    movabs $DISK_FOLD, %rdx
1:  add (%rsi), %rax
    imul %rdx, %rax
    add $8, %rsi
    sub $8, %rcx
    jnz 1b
    ret

# disk_fold_read: as disk_fold, but with verify=sectors only the first word of each 512-byte
# sector (RCX is a multiple of 512 then). Clobbers RCX, RDX, RSI.
disk_fold_read:
    cmpq $0, disk_verify_sectors(%rip)
    je disk_fold
    movabs $DISK_FOLD, %rdx
1:  add (%rsi), %rax
    imul %rdx, %rax
    add $512, %rsi
    sub $512, %rcx
    jnz 1b
    ret
# ANCHOR_END: disk_fold

# disk-read: RDI = requests. Checksum: every word read (or every sector's first word),
# folded in disk order.
k_disk_read:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12                  # R12 = requests left
    xor %r13d, %r13d                # R13 = the checksum
    movq $0, disk_pos(%rip)
1:  test %r12, %r12
    jz 2f
    mov %r12, %rdi
    call disk_batch_size
    mov %rax, %rbx                  # RBX = this batch
    mov %rbx, %rdi
    call disk_plan
    call disk_driver
    mov %rbx, %rdi
    call *DRV_READ(%rax)
    mov $DISK_DATA, %esi
    mov disk_request(%rip), %rcx
    imul %rbx, %rcx
    mov %r13, %rax
    call disk_fold_read
    mov %rax, %r13
    sub %rbx, %r12
    jmp 1b
2:  mov %r13, %rax
    pop %r13
    pop %r12
    pop %rbx
    ret

# disk-write: RDI = requests. Writes them all, flushes, reads them back in the same order.
# Checksum: what was read back, folded like disk-read's.
k_disk_write:
    push %rbx
    push %r12
    push %r13
    push %r14
    mov %rdi, %r14                  # R14 = requests
    mov %rdi, %r12                  # R12 = requests left to write
    movq $0, disk_pos(%rip)
1:  test %r12, %r12
    jz 2f
    mov %r12, %rdi
    call disk_batch_size
    mov %rax, %rbx
    mov %rbx, %rdi
    call disk_plan
    mov %rbx, %rdi
    call disk_fill
    call disk_driver
    mov %rbx, %rdi
    call *DRV_WRITE(%rax)
    sub %rbx, %r12
    jmp 1b
2:  call disk_driver                # everything written so far reaches the medium
    call *DRV_FLUSH(%rax)
    incq disk_flushes(%rip)
    mov %r14, %r12                  # read back
    xor %r13d, %r13d
    movq $0, disk_pos(%rip)
3:  test %r12, %r12
    jz 4f
    mov %r12, %rdi
    call disk_batch_size
    mov %rax, %rbx
    mov %rbx, %rdi
    call disk_plan
    mov $DISK_DATA, %ecx            # poison the buffer: what is checked must have been read
    mov disk_request(%rip), %rdx
    imul %rbx, %rdx
    mov %rcx, %rdi
    mov %rdx, %rcx
    shr $3, %rcx
    mov $-1, %rax
    rep stosq
    call disk_driver
    mov %rbx, %rdi
    call *DRV_READ(%rax)
    mov %rbx, %rdi
    mov %r13, %rax
    call disk_verify
    mov %rax, %r13
    sub %rbx, %r12
    jmp 3b
4:  mov %r13, %rax
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret

# disk_fill: RDI = k; request j's buffer gets the pattern for its place on the disk.
# Clobbers RAX, RCX, RDX, RSI, R8, R9.
disk_fill:
    movabs $DISK_WRITE_XOR, %r9
    mov $DISK_DATA, %esi
    xor %r8d, %r8d
1:  cmp %rdi, %r8
    jae 3f
    mov DISK_SECTOR_LIST(, %r8, 8), %rax
    shl $9, %rax                    # RAX = the byte offset on the disk
    mov disk_request(%rip), %rcx
    shr $3, %rcx
2:  mov %rax, %rdx
    xor %r9, %rdx
    mov %rdx, (%rsi)
    add $8, %rsi
    add $8, %rax
    dec %rcx
    jnz 2b
    inc %r8
    jmp 1b
3:  ret

# disk_verify: RDI = k, RAX = the checksum so far. Checks every word of the k buffers against
# the pattern and folds it in; RAX = the new checksum. Stops the kernel on a mismatch.
# Clobbers RCX, RDX, RSI, R8-R11.
disk_verify:
    movabs $DISK_WRITE_XOR, %r9
    movabs $DISK_FOLD, %r10
    mov $DISK_DATA, %esi
    xor %r8d, %r8d
1:  cmp %rdi, %r8
    jae 3f
    mov DISK_SECTOR_LIST(, %r8, 8), %r11
    shl $9, %r11                    # R11 = the byte offset on the disk
    mov disk_request(%rip), %rcx
    shr $3, %rcx
2:  mov %r11, %rdx
    xor %r9, %rdx
    cmp %rdx, (%rsi)
    jne 4f
    add %rdx, %rax
    imul %r10, %rax
    add $8, %rsi
    add $8, %r11
    dec %rcx
    jnz 2b
    inc %r8
    jmp 1b
3:  ret
4:  push %rdx
    push (%rsi)
    PRINT "disk: disk-write read back 0x"
    pop %rax
    call print_hex64
    PRINT " at byte offset 0x"
    mov %r11, %rax
    call print_hex
    PRINT " of the disk, where it wrote 0x"
    pop %rax
    call print_hex64
    PRINT "\n"
    EXIT EXIT_DISK_MISMATCH

# disk_report: after the workloads, what the disk was asked to do and what it cost in
# doorbells (ATA: commands, virtio: notifications) and interrupts. Nothing without a disk.
disk_report:
    cmpq $0, disk_kind(%rip)
    je 9f
    PRINT "disk: "
    call disk_print_name
    PRINT ": "
    mov disk_requests(%rip), %rax
    call print_u64
    PRINT " requests in "
    mov disk_batches(%rip), %rax
    call print_u64
    PRINT " batches, "
    mov disk_flushes(%rip), %rax
    call print_u64
    PRINT " flushes, "
    mov disk_kicks(%rip), %rax
    call print_u64
    cmpq $DISK_IDE, disk_kind(%rip)
    jne 1f
    PRINT " commands, "
    jmp 2f
1:  PRINT " notifications, "
2:  mov disk_irqs(%rip), %rax
    call print_u64
    PRINT " interrupts"
    cmpq $0, vq_irqs_empty(%rip)
    je 3f
    PRINT " ("
    mov vq_irqs_empty(%rip), %rax
    call print_u64
    PRINT " with an empty ISR)"
3:  PRINT "\n"
9:  ret

# disk_usage: for the usage text — the disk workloads, if a disk is attached.
disk_usage:
    call disk_find
    test %eax, %eax
    jz 9f
    PRINT "disk workloads (a disk is attached): disk-read disk-write; disk=ide|virtio-mmio|virtio-pci request=BYTES depth=N multiple=N lba48=1\n"
9:  ret

# parse_disk_option: RSI = a command-line word. RAX = 1 and RSI after the word if it is one
# of the disk options (cmdline.S calls this for words it does not know), else RAX = 0.
# Clobbers RCX, RDX, RDI.
parse_disk_option:
    mov $key_disk, %edi
    call starts_with
    jnz 1f
    add $key_disk_len, %rsi
    mov $DISK_IDE, %edx
    mov $disk_name_ide, %edi
    call name_matches
    je 6f
    mov $DISK_VIRTIO_MMIO, %edx
    mov $disk_name_mmio, %edi
    call name_matches
    je 6f
    mov $DISK_VIRTIO_PCI, %edx
    mov $disk_name_pci, %edi
    call name_matches
    je 6f
    PRINT "kernel: disk= must be ide, virtio-mmio or virtio-pci\n"
    EXIT EXIT_BAD_CMDLINE
6:  mov %rdx, disk_choice(%rip)
    add %rcx, %rsi                  # (name_matches left RCX = the name's length)
    jmp 8f
1:  mov $key_request, %edi
    call starts_with
    jnz 2f
    add $key_request_len, %rsi
    call parse_decimal
    test %rax, %rax
    jz 7f
    test $511, %eax
    jnz 7f
    cmp $DISK_DATA_MAX, %rax
    ja 7f
    mov %rax, disk_request_arg(%rip)
    jmp 8f
2:  mov $key_depth, %edi
    call starts_with
    jnz 3f
    add $key_depth_len, %rsi
    call parse_decimal
    test %rax, %rax
    jz 5f
    cmp $BATCH_MAX, %rax
    ja 5f
    mov %rax, disk_depth_arg(%rip)
    jmp 8f
3:  mov $key_multiple, %edi
    call starts_with
    jnz 4f
    add $key_multiple_len, %rsi
    call parse_decimal
    cmp $ATA_MAX_MULTIPLE, %rax
    ja 12f
    inc %rax                        # stored + 1: 0 means "not given"
    mov %rax, ata_multiple_arg(%rip)
    jmp 8f
4:  mov $key_lba48, %edi
    call starts_with
    jnz 9f
    add $key_lba48_len, %rsi
    call parse_decimal
    mov %rax, ata_lba48_arg(%rip)
    jmp 8f
9:  mov $key_verify, %edi
    call starts_with
    jnz 10f
    add $key_verify_len, %rsi
    xor %edx, %edx
    mov $verify_words, %edi
    call name_matches
    je 11f
    mov $1, %edx
    mov $verify_sectors, %edi
    call name_matches
    je 11f
    PRINT "kernel: verify= must be words or sectors\n"
    EXIT EXIT_BAD_CMDLINE
11: mov %rdx, disk_verify_sectors(%rip)
    add %rcx, %rsi                  # (name_matches left RCX = the name's length)
8:  mov $1, %eax
    ret
10: xor %eax, %eax
    ret
7:  PRINT "kernel: request= must be a multiple of 512 bytes, from 512 to 16777216\n"
    EXIT EXIT_BAD_CMDLINE
5:  PRINT "kernel: depth= must be 1 to 128 requests\n"
    EXIT EXIT_BAD_CMDLINE
12: PRINT "kernel: multiple= must be 0 to 16 sectors\n"
    EXIT EXIT_BAD_CMDLINE

    .section .rodata
key_disk:       .asciz "disk="
.set key_disk_len, 5
key_request:    .asciz "request="
.set key_request_len, 8
key_depth:      .asciz "depth="
.set key_depth_len, 6
key_multiple:   .asciz "multiple="
.set key_multiple_len, 9
key_lba48:      .asciz "lba48="
.set key_lba48_len, 6
key_verify:     .asciz "verify="
.set key_verify_len, 7
verify_words:   .asciz "words"
verify_sectors: .asciz "sectors"
    .text
