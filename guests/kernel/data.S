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
    .balign 8
pv_op_pte_set:        .long pte_set_native, 0       # the pv_ops (pv.S): native until
pv_op_tlb_flush_page: .long tlb_flush_page_native, 0  # pv_detect finds HC_MMU_UPDATE
pv_op_mmu_commit:     .long mmu_commit_native, 0
pit_last_ticks:       .quad -1      # the previous PIT reading (clock.S); -1: none yet
pit_last_count:       .quad 0
blk_vq:     .quad 0, VQ_DESC, VQ_AVAIL, VQ_USED, 0, 0, 0, 0     # struct vq (virtio.S): virtio-blk's
con_vq:     .quad CONSOLE_TRANSMITQ, CON_DESC, CON_AVAIL, CON_USED, 0, 0, 0, 0  # the console's
rng_vq:     .quad 0, RNG_DESC, RNG_AVAIL, RNG_USED, 0, 0, 0, 0      # the rng's requestq

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
nmi_count:          .skip 8         # NMIs handled (nmi.S)
nmi_depth:          .skip 8         # NMI handlers running now
nmi_max_depth:      .skip 8         # the deepest they nested
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
    .balign 8                       # what pv_detect found (0 where it found nothing)
pv_kvm_features:    .skip 8         # CPUID 0x40000001 EAX
pv_features:        .skip 8         # CPUID 0x40000101: vmscope feature bits,
pv_hypercall_port:  .skip 8         #   the hypercall door,
pv_abi_version:     .skip 8         #   the ABI version,
pv_batch_max:       .skip 8         #   requests per HC_MMU_UPDATE (at most MMU_BATCH_MAX)
kvmclock_in_use:    .skip 8         # 1 once the hypervisor keeps pvclock current
mmu_batch_count:    .skip 8         # requests queued in mmu_batch
    .balign 8                       # disks (disk.S): the command line's words, 0 = default
disk_choice:        .skip 8         # disk=: 0 any, 1 ide, 2 virtio-mmio, 3 virtio-pci
disk_request_arg:   .skip 8         # request= bytes
disk_depth_arg:     .skip 8         # depth= requests per batch
ata_multiple_arg:   .skip 8         # multiple= sectors per DRQ block, plus 1
ata_lba48_arg:      .skip 8         # lba48=1: 48-bit commands always
disk_verify_sectors: .skip 8        # verify=sectors: disk-read folds one word per sector
disk_kind:          .skip 8         # the interface in use (0 until a disk workload opens it)
disk_request:       .skip 8         # bytes per request
disk_sectors:       .skip 8         # the disk's size, in 512-byte sectors ...
disk_bytes:         .skip 8         # ... and in bytes
disk_slots:         .skip 8         # requests the driver can have in flight
disk_batch:         .skip 8         # requests per batch: min(depth, slots, buffer)
disk_pos:           .skip 8         # the byte offset of the next request
disk_requests:      .skip 8         # counts for disk_report
disk_batches:       .skip 8
disk_flushes:       .skip 8
disk_kicks:         .skip 8         # ATA commands / virtio notifications
disk_irqs:          .skip 8         # device interrupts handled
ata_status:         .skip 8         # the status the interrupt handler read
ata_command:        .skip 8         # the last command byte (for messages)
ata_multiple:       .skip 8         # sectors per DRQ block with READ/WRITE MULTIPLE, or 0
ata_lba48_ok:       .skip 8         # the drive has 48-bit commands
apic_on:            .skip 8         # apic.S has mapped and enabled the APICs
blk_offered:        .skip 8         # virtio-blk: the features offered ...
blk_features:       .skip 8         # ... and the ones accepted
vq_irqs:            .skip 8         # virtio interrupts handled
vq_isr_bits:        .skip 8         # every ISR bit seen
vq_irqs_empty:      .skip 8         # virtio interrupts whose ISR read 0
console_choice:     .skip 8         # console=: 0 the UART, 1 a virtio-console (console.S)
console_virtio:     .skip 8         # 1 while the kernel prints through the virtio-console
con_len:            .skip 8         # bytes in the line buffer (CON_BUF)
rng_announced:      .skip 8         # 1 once rng-read said where the virtio-rng is (rng.S)
    .balign 8
blk_dev:            .skip VD_SIZE   # the virtio-blk device (virtio.S: struct vdev)
con_dev:            .skip VD_SIZE   # the virtio-console
rng_dev:            .skip VD_SIZE   # the virtio-rng
    .balign 32                      # pvclock_vcpu_time_info: 32 bytes, never across a page
pvclock:            .skip 32
    .balign 16
mmu_batch:          .skip MMU_BATCH_MAX * MMU_REQUEST_SIZE   # {target, value} requests
    .balign 16
                    .skip STACK_SIZE
boot_stack_top:                     # the kernel's own stack
                    .skip STACK_SIZE
trap_stack_top:                     # TSS.RSP0 and the SYSCALL stack: entries from ring 3
