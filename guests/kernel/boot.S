# boot.S — from the Multiboot loader's 32-bit protected mode to 64-bit long mode.
# Teaches: the minimum a kernel needs before it can switch modes — its own GDT, a stack, a
# copy of what the loader handed over — and the CR4.PAE → EFER.LME → CR0.PG sequence.
#
# The loader starts us with paging off, so every address here is physical. The first page
# tables map 0-64 MiB one to one with 2 MiB pages (supervisor only) and the null-device MMIO
# page; user address spaces are built later, in 64-bit code (memory.S).

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY boot_stack_top  # zero the BSS, ESP = our stack, EBP = the loader's magic
    lgdt gdtr
    ljmp $KERNEL32_CS, $1f          # CS from our GDT, not the loader's
1:  mov $KERNEL_DS, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs

    call serial_init32
    CHECK_MULTIBOOT_MAGIC 32
    call copy_cmdline32             # EBX = the Multiboot information structure

    # Long mode, NX and SYSCALL: CPUID leaf 0x80000001, EDX bits 29, 20 and 11.
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    and $((1 << 29) | (1 << 20) | (1 << 11)), %edx
    cmp $((1 << 29) | (1 << 20) | (1 << 11)), %edx
    jne no_long_mode

    # The boot address space: PML4[0] -> PDPT; PDPT[0] -> PD mapping 0-64 MiB with 2 MiB
    # pages; PDPT[3] -> the device directory (3-4 GiB) holding the null-device MMIO page.
    movl $(boot_pdpt + PG_P + PG_RW), boot_pml4
    movl $(boot_pd + PG_P + PG_RW), boot_pdpt
    movl $(device_pd + PG_P + PG_RW), boot_pdpt + 3 * 8
    movl $(NULL_MMIO + PG_P + PG_RW + PG_PS + PG_PCD + PG_PWT), device_pd
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax                   # entry i maps 2 MiB * i
    or $(PG_P + PG_RW + PG_PS), %eax
    mov %eax, boot_pd(, %ecx, 8)
    inc %ecx
    cmp $KERNEL_MAP_END_2M, %ecx
    jb 2b
    mov $boot_pml4, %eax
    mov %eax, %cr3

    mov $CR4_PAE, %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE | EFER_SCE), %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0                  # long mode is active, still in 32-bit code
    ljmp $KERNEL_CS, $long_mode     # a code segment with L = 1: 64-bit from here on

no_long_mode:
    PRINT "kernel: this CPU cannot run 64-bit code (needs long mode, NX and SYSCALL)\n", 32
    EXIT EXIT_EXCEPTION

# copy_cmdline32: copy the Multiboot command line (if the loader gave one) into cmdline_buf,
# at most CMDLINE_MAX - 1 bytes, zero-terminated. Copying now means the rest of the kernel
# never has to care where the loader put it. Clobbers EAX, ECX, ESI, EDI.
copy_cmdline32:
    testl $MBI_HAS_CMDLINE, MBI_FLAGS(%ebx)
    jz 2f
    mov MBI_CMDLINE(%ebx), %esi
    mov $cmdline_buf, %edi
    mov $(CMDLINE_MAX - 1), %ecx
1:  lodsb
    test %al, %al
    jz 2f
    stosb
    dec %ecx
    jnz 1b
2:  ret

    SERIAL_ROUTINES 32
