# hello32.S — a Multiboot kernel that turns on 32-bit paging and reads what the loader told it.
# Teaches: loading a GDT, two-level 32-bit page tables (page directory -> page table -> 4 KiB
# page), CR3 and CR0.PG, identity mapping, and the Multiboot information structure.
#
# Assembled twice (hello-aout.S includes this file with AOUT_KLUDGE set):
#   hello32.elf     an ELF image; the loader finds the load addresses in the ELF headers;
#   hello-aout.bin  a flat binary whose Multiboot header carries the addresses itself
#                   (the "a.out kludge"), to exercise a loader's other path.
# Prints a greeting, the command line and mem_upper, then exits with 0x10.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"
    .include "gdt32.inc"

.ifdef AOUT_KLUDGE
    MULTIBOOT_AOUT_HEADER
.else
    MULTIBOOT_HEADER
.endif

.set PTE_PRESENT, 1 << 0
.set PTE_WRITABLE, 1 << 1
.set CR0_PG, 1 << 31
.set MAPPED_TOP, 4 << 20        # we map the first 4 MiB, no more

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top

    LOAD_FLAT_GDT

    call serial_init
    CHECK_MULTIBOOT_MAGIC

    # Page table: 1024 entries, entry i maps the 4 KiB page at i * 4 KiB to itself.
    mov $page_table, %edi
    mov $(PTE_PRESENT | PTE_WRITABLE), %eax     # page 0, present, writable
    mov $1024, %ecx
2:  mov %eax, (%edi)
    add $4096, %eax             # next physical page
    add $4, %edi                # next entry
    loop 2b
    # Page directory entry 0 covers virtual 0-4 MiB and points at that table; the other
    # 1023 entries stay zero (not present): touching memory above 4 MiB would fault.
    movl $(page_table + PTE_PRESENT + PTE_WRITABLE), page_directory

    mov $page_directory, %eax
    mov %eax, %cr3              # CR3 = physical address of the page directory
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0              # paging is on from the next instruction, which still works
                                # because virtual = physical for everything we use

.ifdef AOUT_KLUDGE
    PRINT "Hello from an a.out-kludge kernel!\n"
.else
    PRINT "Hello from 32-bit protected mode with paging!\n"
.endif

    # EBX still points at the Multiboot information (a physical address, valid through our
    # identity mapping as long as it is below 4 MiB).
    cmp $(MAPPED_TOP - 32), %ebx
    jae no_info
    PRINT "command line: "
    testl $MBI_HAS_CMDLINE, MBI_FLAGS(%ebx)
    jz no_cmdline
    mov MBI_CMDLINE(%ebx), %esi
    cmp $MAPPED_TOP, %esi       # a loader may put it anywhere; we only mapped 4 MiB
    jae no_cmdline              # (a long line could still cross 4 MiB: good enough here)
    call serial_puts
    jmp 3f
no_cmdline:
    PRINT "(none)"
3:  PRINT "\nmem_upper: "
    testl $MBI_HAS_MEM, MBI_FLAGS(%ebx)
    jz no_mem
    mov MBI_MEM_UPPER(%ebx), %eax
    call serial_dec
    PRINT " KiB\n"
    EXIT 0x10
no_mem:
    PRINT "(none)\n"
    EXIT 0x10
no_info:
    PRINT "Multiboot information above 4 MiB, not mapped\n"
    EXIT 0x10

    SERIAL_ROUTINES

    .bss
    .balign 4096
page_directory: .skip 4096      # page-table memory must be 4 KiB aligned
page_table:     .skip 4096
    .balign 16
    .skip 4096
stack_top:
