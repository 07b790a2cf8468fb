# kernel.S — the vmscope teaching kernel: one small 64-bit kernel that runs the workload suite.
# Teaches: what a kernel must do before a benchmark can run — boot, long mode, descriptor
# tables, interrupts, address spaces, user mode, system calls, page faults — and where each
# of those costs something under emulation and under hardware-assisted virtualization.
#
# Boot it with a Multiboot command line naming the workloads:
#     vmscope run kernel --cmdline "workloads=syscall,pagefault iterations=1000"
#     qemu-system-x86_64 -kernel kernel.elf -append "workloads=all iterations=100" ...
# Each workload prints one line, then the kernel exits through isa-debug-exit (0xF4):
#     RESULT workload=syscall ops=1000 guest_tsc=123456 checksum=0x000000000007a314
#
# The kernel is one assembly unit made of files with one concern each, included below in the
# order a reader meets them. Ring-0 code lives in .text (linked at 1 MiB); the user
# programs live in .user_text (linked at 2 MiB, see link/multiboot.ld).

    .set BOCHS_EXIT_TAIL, 1     # EXIT also ends Bochs, which has no debug-exit device
    .include "pc.inc"           # shared with the other guests: ports, EXIT
    .include "serial.inc"       # shared: polled UART output, PRINT
    .include "multiboot.inc"    # shared: the Multiboot header and entry
    .include "layout.inc"       # this kernel's memory map, selectors, system calls
    .include "pv_abi.inc"       # the paravirtual interface: CPUID leaves, hypercalls, kvmclock

    MULTIBOOT_HEADER

    .include "boot.S"           # 32-bit entry, command line copy, first page tables, long mode
    .set EXIT_FLUSHES_CONSOLE, 1  # from here on (64-bit code) EXIT first sends a line still
                                # in the virtio-console's buffer (console.S, pc.inc)
    .include "main.S"           # the 64-bit main line: set everything up, run the workloads
    .include "cpu_tables.S"     # GDT, TSS, IDT and the SYSCALL MSRs
    .include "traps.S"          # exception entry, the register frame, #DE/#UD/#PF dispatch
    .include "pv.S"             # finding the hypervisor; page-table changes as pv_ops
    .include "timer.S"          # PIC + PIT, the timer interrupt
    .include "clock.S"          # reading the time: the PIT counter or kvmclock
    .include "syscall.S"        # SYSCALL, INT 0x80, the PVM detours, the system calls
    .include "memory.S"         # the frame allocator, address spaces, demand-zero faults
    .include "task.S"           # entering ring 3 and coming back when the task exits
    .include "cmdline.S"        # workloads=… iterations=…
    .include "workloads.S"      # the workload table, the runner, the RESULT line
    .include "print.S"          # 64-bit decimal and hexadecimal output
    .include "work_kernel.S"    # the ring-0 workloads
    .include "apic.S"           # the local APIC and IOAPIC, for devices beyond the PICs
    .include "pci.S"            # PCI configuration space: enumeration, capabilities, BARs
    .include "ata.S"            # an ATA PIO disk driver (IRQ 14)
    .include "virtio.S"         # virtio: the device and queue structures, the handshake
    .include "virtio_mmio.S"    # ... over virtio-mmio
    .include "virtio_pci.S"     # ... over virtio-pci
    .include "virtio_blk.S"     # virtio-blk: the request virtqueue, requests, interrupts
    .include "console.S"        # the console: UART or virtio-console; console-write
    .include "disk.S"           # disk-read, disk-write and the choice of driver
    .include "rng.S"            # a virtio-rng driver; rng-read
    .include "virtio_net.S"     # a virtio-net driver (polled, batched transmit)
    .include "rtl8139.S"        # an RTL8139 driver (polled, I/O ports)
    .include "net.S"            # Ethernet, ARP, IPv4, ICMP, UDP: the stack
    .include "net_workloads.S"  # ping, pong, udp-send, udp-recv
    .include "dirty.S"          # dirty:N, memory written at a known rate (live migration)
    .include "nmi.S"            # nmi:N, non-maskable interrupts sent to itself
    .include "user.S"           # the ring-3 programs (section .user_text)
    .include "data.S"           # the GDT image, descriptor-table pointers, the BSS
