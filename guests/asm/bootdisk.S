# bootdisk.S — a BIOS boot loader that starts a Multiboot kernel from a hard-disk image.
# Teaches: what happens between a PC BIOS and a kernel — the 512-byte boot sector the BIOS
# loads at 0x7C00, disk reads by sector number (INT 13h extensions), memory sizes asked from
# the BIOS, short trips to protected mode to copy above 1 MiB, and the Multiboot handoff.
#
# vmscope never needs it (its loader places a kernel directly); Bochs does, because Bochs has
# no Multiboot loader. `vmscope compare --engines bochs` builds a disk image at run time
# (src/bootdisk.rs): this loader, then the kernel's ELF segments, each from a sector boundary.
#
#   LBA 0        stage 1 (this boot sector): loads the rest of the loader to 0x7E00
#   LBA 1        the parameter block the host fills in (below, and link/bootdisk.ld)
#   LBA 2..      stage 2: memory sizes, A20, the segments, protected mode, the kernel
#   LBA L..      the kernel's segments (file bytes only; the loader zero-fills the rest)
#
# The kernel then starts as a Multiboot loader promises: 32-bit protected mode with flat 4 GiB
# segments, paging and interrupts off, EAX = 0x2BADB002, EBX = the information structure with
# mem_lower/mem_upper (INT 12h, INT 15h E801h) and the command line. No memory map: the
# teaching kernel does not read one. The loader prints nothing when it succeeds; on a failure
# it prints a line on COM1 and exits with BOOT_FAILED (pc.inc's EXIT, which also ends Bochs).

    .set BOCHS_EXIT_TAIL, 1
    .include "pc.inc"
    .include "serial.inc"

.set MB_LOADER_MAGIC, 0x2BADB002
.set MBI_HAS_MEM,     1 << 0
.set MBI_HAS_CMDLINE, 1 << 2
.set BOOT_FAILED,     0x19      # guests::exit::BOOT_FAILED
.set MAX_SEGMENTS,    8         # the parameter block's room (src/bootdisk.rs agrees)
.set CMDLINE_BYTES,   256
.set BUFFER,          0x10000   # INT 13h reads land here (segment 0x1000) ...
.set CHUNK_SECTORS,   64        # ... 32 KiB at a time, then are copied to their place
.set CR0_PE,          1 << 0
.set CODE32, 0x08               # GDT selectors: flat 32-bit code and data for the copies
.set DATA32, 0x10               # and the handoff, 16-bit ones (64 KiB limit) to come back
.set CODE16, 0x18               # to real mode with real-mode segment limits
.set DATA16, 0x20

# ---- stage 1: sector 0, loaded by the BIOS --------------------------------------------------
    .code16
    .section .boot, "ax"
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7C00, %sp            # the stack grows down from just below this sector
    ljmp $0, $1f                # some BIOSes jump to 07C0:0000; make it 0000:7Cxx
1:  sti
    cld
    mov %dl, boot_drive         # the BIOS says in DL which drive it booted from
    call serial_init

    mov $0x41, %ah              # INT 13h extensions present? (BX = 0x55AA in, 0xAA55 out)
    mov $0x55AA, %bx
    mov boot_drive, %dl
    int $0x13
    jc disk_error
    cmp $0xAA55, %bx
    jne disk_error

    # The rest of the loader: sectors 1 .. _loader_sectors-1, right after this one.
    movw $(_loader_sectors - 1), dap_count
    movw $0x7E00, dap_offset
    movw $0, dap_segment
    movl $1, dap_lba
    call read_sectors
    jmp stage2

# read_sectors: INT 13h AH=42h with the disk address packet below. Fails the boot on error.
read_sectors:
    mov $dap, %si
    mov boot_drive, %dl
    mov $0x42, %ah
    int $0x13
    jc disk_error
    ret

disk_error:
    mov $disk_error_text, %si
    call serial_puts
    EXIT BOOT_FAILED

    SERIAL_ROUTINES

boot_drive: .byte 0
disk_error_text: .asciz "bootdisk: the BIOS cannot read the disk by sector number (INT 13h AH=42h)\n"
    .p2align 2
# The disk address packet: what INT 13h AH=42h reads, from where, to where.
dap:        .byte 16, 0         # packet size, reserved
dap_count:  .word 0             # sectors to read
dap_offset: .word 0             # destination, segment:offset
dap_segment: .word 0
dap_lba:    .quad 0             # first sector (logical block address)

# ---- the parameter block: sector 1, filled in by the host (src/bootdisk.rs) ------------------
    .section .params, "aw"
    .ascii "VMSCDISK"           # checked by the host before it writes
params_entry:    .long 0        # the kernel's entry point
params_count:    .long 0        # how many segments follow
# One per segment: LBA of its first sector, physical destination, bytes in the file, bytes
# in memory (the rest up to here is zero-filled: the segment's .bss).
params_segments: .skip 16 * MAX_SEGMENTS
params_cmdline:  .skip CMDLINE_BYTES    # the Multiboot command line, zero-terminated

# ---- stage 2 ---------------------------------------------------------------------------------
    .text
stage2:
    cmpl $0, params_entry       # a loader written to a disk without a kernel
    jne 1f
    PRINT "bootdisk: no kernel in the parameter block\n"
    EXIT BOOT_FAILED

    # Memory sizes for the information structure. INT 12h: KiB below 640 KiB. INT 15h E801h:
    # KiB from 1 to 16 MiB in AX (or CX) and 64 KiB blocks above 16 MiB in BX (or DX).
1:  int $0x12
    movzwl %ax, %eax
    mov %eax, mbi_mem_lower
    mov $0xE801, %ax
    int $0x15
    jc 2f                       # no E801h: leave the sizes out (flag 0 stays clear)
    test %ax, %ax
    jnz 1f
    mov %cx, %ax                # some BIOSes answer in CX/DX only
    mov %dx, %bx
1:  movzwl %ax, %eax
    movzwl %bx, %ebx
    shl $6, %ebx                # 64 KiB blocks -> KiB
    add %ebx, %eax
    mov %eax, mbi_mem_upper
    orl $MBI_HAS_MEM, mbi_flags
2:  movl $params_cmdline, mbi_cmdline
    orl $MBI_HAS_CMDLINE, mbi_flags

    # A20: with the gate closed, address bit 20 is forced to 0 and the kernel at 1 MiB would
    # land on top of address 0. The "fast A20" bit of port 0x92 opens it (bit 0 would reset).
    in $0x92, %al
    or $2, %al
    and $0xFE, %al
    out %al, $0x92

    # Each segment: read up to CHUNK_SECTORS sectors to BUFFER, copy them to their place.
    mov $params_segments, %bx
    mov params_count, %cx
    cmp $MAX_SEGMENTS, %cx
    jbe next_segment
    PRINT "bootdisk: more segments than the parameter block holds\n"
    EXIT BOOT_FAILED
next_segment:
    test %cx, %cx
    jz segments_done
    push %cx
    push %bx
    mov 0(%bx), %eax
    mov %eax, cur_lba
    mov 4(%bx), %eax
    mov %eax, cur_dest
    mov 8(%bx), %eax
    mov %eax, bytes_left
next_chunk:
    mov bytes_left, %ecx
    test %ecx, %ecx
    jz segment_done
    cmp $(CHUNK_SECTORS * 512), %ecx
    jbe 1f
    mov $(CHUNK_SECTORS * 512), %ecx
1:  mov %ecx, chunk_bytes
    add $511, %ecx
    shr $9, %ecx                # sectors = bytes rounded up
    mov %cx, dap_count
    movw $0, dap_offset
    movw $(BUFFER >> 4), dap_segment
    mov cur_lba, %eax
    mov %eax, dap_lba
    add %ecx, cur_lba
    call read_sectors
    mov $BUFFER, %esi
    mov cur_dest, %edi
    mov chunk_bytes, %ecx
    add %ecx, cur_dest
    sub %ecx, bytes_left
    call copy_high
    jmp next_chunk
segment_done:
    pop %bx
    pop %cx
    add $16, %bx
    dec %cx
    jmp next_segment

segments_done:
    # The handoff: protected mode for good.
    cli
    lgdtl gdt_descriptor
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $CODE32, $handoff

# copy_high: copy ECX bytes from ESI to EDI (physical addresses anywhere below 4 GiB). Real
# mode reaches only the first MiB (plus 64 KiB), so this visits 32-bit protected mode for one
# REP MOVSB and comes back: through a 16-bit code segment, with 64 KiB data segments loaded,
# because clearing CR0.PE keeps whatever limits the segment caches hold.
copy_high:
    cli                         # no interrupts while the IVT means nothing
    lgdtl gdt_descriptor
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $CODE32, $1f
    .code32
1:  mov $DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    rep movsb
    ljmp $CODE16, $2f
    .code16
2:  mov $DATA16, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %cr0, %eax
    and $~CR0_PE, %eax
    mov %eax, %cr0
    ljmp $0, $3f                # real-mode CS again
3:  xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    sti
    ret

    .code32
handoff:
    mov $DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov $0x7C00, %esp
    # Zero each segment's tail [dest + file bytes, dest + memory bytes): its .bss.
    mov params_count, %edx
    mov $params_segments, %ebx
1:  test %edx, %edx
    jz 2f
    mov 4(%ebx), %edi
    add 8(%ebx), %edi
    mov 12(%ebx), %ecx
    sub 8(%ebx), %ecx
    xor %eax, %eax
    rep stosb
    add $16, %ebx
    dec %edx
    jmp 1b
2:  mov $MB_LOADER_MAGIC, %eax  # "a Multiboot loader started you"
    mov $mbi, %ebx              # and here is what it found out
    jmp *params_entry

    .data
    .p2align 3
gdt:
    .quad 0                     # 0x00: null
    .quad 0x00CF9A000000FFFF    # 0x08: code, base 0, 4 GiB, 32-bit
    .quad 0x00CF92000000FFFF    # 0x10: data, base 0, 4 GiB
    .quad 0x00009A000000FFFF    # 0x18: code, base 0, 64 KiB, 16-bit
    .quad 0x000092000000FFFF    # 0x20: data, base 0, 64 KiB
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .p2align 2
# The Multiboot information structure (the fields up to the command line).
mbi:
mbi_flags:     .long 0
mbi_mem_lower: .long 0
mbi_mem_upper: .long 0
mbi_boot_dev:  .long 0
mbi_cmdline:   .long 0
# Stage 2's variables (in memory: BIOS calls may change registers).
cur_lba:       .long 0
cur_dest:      .long 0
bytes_left:    .long 0
chunk_bytes:   .long 0
