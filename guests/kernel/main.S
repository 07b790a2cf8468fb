# main.S — the kernel's 64-bit main line: set up the machine, then run what the command line asks.
# Teaches: the order a kernel brings itself up in — tables before interrupts, memory before
# address spaces, the timer last — and that a benchmark kernel ends by reporting and exiting.

    .code64
    .text
long_mode:
    mov $KERNEL_DS, %ax             # data segments are ignored in 64-bit mode, but SS must
    mov %ax, %ss                    # hold a valid selector for IRETQ
    mov %ax, %ds
    mov %ax, %es
    mov $boot_stack_top, %esp

    call setup_gdt_tss              # cpu_tables.S
    call setup_idt
    call setup_syscall_msrs
    call frames_init                # memory.S
    call timer_start                # timer.S: 100 Hz from now on
    sti

    PRINT "vmscope teaching kernel: long mode, ring 3 in own address spaces, SYSCALL + INT 0x80, demand-zero paging, PIT at 100 Hz\n"
    call pv_detect                  # pv.S: a line per hypervisor interface found, else nothing
    call parse_cmdline              # cmdline.S: fills selected[] and iterations
    call console_init               # console.S: console=virtio moves the console there
    cmpl $0, selected_count(%rip)
    jne 1f
    PRINT "usage: workloads=NAME[:N][,NAME[:N]...] or workloads=all; iterations=N (default 100)\n"
    call print_workload_names
    PRINT "nothing to run: no workloads= on the command line\n"
    EXIT EXIT_OK

1:  call run_selected_workloads     # workloads.S: one RESULT line each
    call disk_report                # disk.S: what the disk did, if a workload used one
    cli
    PRINT "kernel: done after "
    mov ticks(%rip), %rax
    call print_u64
    PRINT " timer interrupts\n"
    EXIT EXIT_OK
