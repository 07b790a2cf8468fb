# workloads.S — the workload table and the runner that times each one and prints its RESULT.
# Teaches: a nanobenchmark is a loop around one costly operation, timed with the TSC, with a
# checksum that proves the work was really done — the same on every engine.
#
# Ring-3 workloads run as a task in a fresh address space (created before the clock starts,
# destroyed after it stops); ring-0 workloads are kernel functions, optionally with a
# `prepare` step outside the timed region. Every entry gets RDI = iterations and returns the
# checksum (ring 0: in RAX; ring 3: through SYS_EXIT). The host (src/compare/) knows the
# checksum each one must produce for a given iteration count.

.set RING0, 0
.set RING3, 3

# WORKLOAD "name", ring, entry, prepare — one 32-byte table entry.
.macro WORKLOAD name, ring, entry, prepare=0
    .pushsection .rodata.names      # not between the entries
.Lname\@: .asciz "\name"
    .popsection
    .long .Lname\@, 0, \entry, 0, \ring, 0, \prepare, 0  # 4 quadwords (an ELF32
                                    # object holds 32-bit addresses only)
.endm

    .section .rodata
    .balign 8
workload_table:
    WORKLOAD "compute",   RING3, user_compute
    WORKLOAD "syscall",   RING3, user_syscall
    WORKLOAD "int80",     RING3, user_int80
    WORKLOAD "portio",    RING0, k_portio
    WORKLOAD "mmio",      RING0, k_mmio
    WORKLOAD "pagefault", RING3, user_pagefault
    WORKLOAD "ptemod",    RING0, k_ptemod, k_ptemod_prepare
    WORKLOAD "cr3switch", RING0, k_cr3switch, k_cr3switch_prepare
    WORKLOAD "divzero",   RING3, user_divzero
    WORKLOAD "cpuid",     RING0, k_cpuid
    WORKLOAD "rdtsc",     RING3, user_rdtsc
    WORKLOAD "cli_sti",   RING0, k_cli_sti
    WORKLOAD "clock",     RING0, k_clock
workload_suite_end:                 # workloads=all stops here
    WORKLOAD "disk-read", RING0, k_disk_read, k_disk_prepare    # disk.S: need a disk
    WORKLOAD "disk-write", RING0, k_disk_write, k_disk_prepare
    WORKLOAD "console-write", RING0, k_console_write    # console.S: lines through the console
    WORKLOAD "rng-read",  RING0, k_rng_read, k_rng_prepare    # rng.S: needs a virtio-rng
    WORKLOAD "ping",      RING0, k_ping, k_net_prepare        # net.S: need a NIC and a peer
    WORKLOAD "pong",      RING0, k_pong, k_net_prepare
    WORKLOAD "udp-send",  RING0, k_udp_send, k_net_prepare
    WORKLOAD "udp-recv",  RING0, k_udp_recv, k_net_prepare
    WORKLOAD "dirty",     RING0, k_dirty                      # dirty.S: for live migration
    WORKLOAD "nmi",       RING0, k_nmi                        # nmi.S: self-NMIs
workload_table_end:
.set WORKLOAD_COUNT, (workload_table_end - workload_table) / 32
.set SUITE_COUNT, (workload_suite_end - workload_table) / 32

    .code64
    .text
# run_selected_workloads: runs selected[0..selected_count) in order.
run_selected_workloads:
    push %rbx
    xor %ebx, %ebx
1:  cmp selected_count(%rip), %ebx
    jae 2f
    lea selected_iterations(%rip), %rax
    mov (%rax, %rbx, 8), %rax       # this workload's own count ...
    cmp $-1, %rax
    jne 3f
    mov iterations(%rip), %rax      # ... or the common one
3:  mov %rax, current_iterations(%rip)
    lea selected(%rip), %rax
    movzbl (%rax, %rbx), %eax
    shl $5, %eax
    add $workload_table, %eax
    mov %rax, %rdi
    call run_workload
    inc %ebx
    jmp 1b
2:  pop %rbx
    ret

# run_workload: RDI = a table entry. Clobbers everything but RBX and RBP.
run_workload:
    mov %rdi, %r12                  # R12 = the entry
    xor %r15d, %r15d                # R15 = the task's address space (0 = none)
    cmpq $RING3, 16(%r12)
    jne 1f
    call space_create
    mov %rax, %r15
    mov %rax, %cr3                  # the task's space; the kernel is mapped there too
    jmp 2f
1:  mov 24(%r12), %rax              # a ring-0 workload's prepare step, if any
    test %rax, %rax
    jz 2f
    call *%rax
# ANCHOR: timed_loop
2:  sti
    rdtsc                           # the clock starts ...
    shl $32, %rdx
    or %rax, %rdx
    mov %rdx, %r13                  # R13 = TSC at the start
    mov current_iterations(%rip), %rdi
    test %r15, %r15
    jz 3f
    mov %rdi, %rsi                  # ring 3: enter_user(entry, iterations)
    mov 8(%r12), %rdi
    call enter_user
    jmp 4f
3:  call *8(%r12)                   # ring 0: entry(iterations)
4:  mov %rax, %r14                  # R14 = the checksum
    rdtsc                           # ... and stops
    shl $32, %rdx
    or %rax, %rdx
    sub %rdx, %r13
    neg %r13                        # R13 = TSC ticks the workload took
    # ANCHOR_END: timed_loop
    sti                             # a system call left interrupts off
    test %r15, %r15
    jz 5f
    mov $boot_pml4, %eax            # back to the boot space, then free the task's
    mov %rax, %cr3
    mov %r15, %rdi
    call space_destroy
5:  PRINT "RESULT workload="
    mov (%r12), %rsi
    call serial_puts
    PRINT " ops="
    mov current_iterations(%rip), %rax
    call print_u64
    PRINT " guest_tsc="
    mov %r13, %rax
    call print_u64
    PRINT " checksum=0x"
    mov %r14, %rax
    call print_hex64
    PRINT "\n"
    ret
