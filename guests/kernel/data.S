# data.S — the kernel's tables and variables: the GDT image, table pointers, and the BSS.
# Teaches: what a kernel keeps in memory — descriptor tables, page tables, stacks, counters —
# and that the BSS costs nothing in the file: the loader (and MULTIBOOT_ENTRY) zero it.

    .data
    .balign 8
gdt:
    .quad 0                         # 0x00: null
    .quad 0x00AF9A000000FFFF        # 0x08: kernel code, 64-bit
    .quad 0x00CF92000000FFFF        # 0x10: kernel data
    .quad 0x00CFFA000000FFFF        # 0x18: user code, 32-bit (SYSRET's base)
    .quad 0x00CFF2000000FFFF        # 0x20: user data
    .quad 0x00AFFA000000FFFF        # 0x28: user code, 64-bit
    .quad 0, 0                      # 0x30: the TSS, filled in by setup_gdt_tss
    .quad 0x00CF9A000000FFFF        # 0x40: kernel code, 32-bit (boot only)
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt, 0
idtr:
    .word 256 * 16 - 1
    .long idt, 0

    .bss
    .balign 4096
boot_pml4:      .skip 4096          # the boot address space (boot.S)
boot_pdpt:      .skip 4096
boot_pd:        .skip 4096
device_pd:      .skip 4096          # 3-4 GiB: the null-device MMIO page, shared by all spaces
idt:            .skip 256 * 16
tss:            .skip TSS_SIZE
    .balign 8
ticks:              .skip 8         # timer interrupts so far
user_rsp:           .skip 8         # the user's RSP during a SYSCALL
task_kernel_rsp:    .skip 8         # where SYS_EXIT resumes the kernel
next_frame:         .skip 8         # the frame pool's bump pointer
free_frames:        .skip 8         # the free list's first frame
demand_zero_faults: .skip 8
iterations:         .skip 8         # iterations= (or its default)
current_iterations: .skip 8         # what the running workload was given
ptemod_space:       .skip 8
ptemod_pte:         .skip 8
ptemod_entries:     .skip 16        # the two PT entries ptemod alternates between
cr3_spaces:         .skip 16        # the two PML4s cr3switch alternates between
selected_count:     .skip 8
selected:           .skip MAX_SELECTED
    .balign 8
selected_iterations: .skip MAX_SELECTED * 8   # per workload, -1 = use iterations
cmdline_buf:        .skip CMDLINE_MAX
    .balign 16
                    .skip STACK_SIZE
boot_stack_top:                     # the kernel's own stack
                    .skip STACK_SIZE
trap_stack_top:                     # TSS.RSP0 and the SYSCALL stack: entries from ring 3
