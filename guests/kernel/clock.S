# clock.S — reading the time: the PIT's counter (emulated hardware) or kvmclock (paravirtual).
# Teaches: a clock read looks like one small thing, but on a virtual machine its cost is all
# in how it reaches the time. The PIT is a device: a latch command and two reads, three port
# accesses, each a VM exit under KVM. kvmclock is memory the hypervisor keeps current: the
# guest reads it and the TSC and computes the time itself, with no exit at all. (The third
# way is the bare TSC, the ring-3 `rdtsc` workload in user.S: no exit where the TSC is not
# intercepted, but a count of cycles, not a time — its rate is what kvmclock adds.)
#
# Both readers return a number that only grows; the `clock` workload (work_kernel.S) checks
# that, read after read.

.set PIT_LATCH_CH0, 0x00        # mode/command: counter 0, "latch the count"

    .code64
    .text
# pit_clock_read: RAX = PIT input clocks (1.193182 MHz) since the timer started: the ticks
# counted so far times the divisor, plus how far the counter has come down in this period.
# Interrupts stay enabled, so two races need care:
#  - a tick arrives while we read: the count and the tick number may then belong to
#    different periods. Reading ticks before and after the count, and again if they differ,
#    settles that.
#  - the counter has already reloaded but its interrupt has not been taken yet (the VMM may
#    raise the line a moment after the count wrapped, or the CPU takes it an instruction
#    later): the count jumps up while ticks stands still, and the time would run backwards
#    by a whole period. As Linux's PIT clocksource did, take the previous count instead —
#    time stands still for a moment, and resumes when the tick is counted.
# Clobbers RAX, RCX, RDX, R8.
pit_clock_read:
1:  mov ticks(%rip), %r8
    OUTB PIT_MODE, PIT_LATCH_CH0    # freeze a copy of the count ...
    mov $PIT_CH0, %dx
    in %dx, %al                     # ... and read it, low byte then high byte
    mov %al, %cl
    in %dx, %al
    mov %al, %ch
    movzwl %cx, %ecx
    cmp ticks(%rip), %r8
    jne 1b
    cmp pit_last_ticks(%rip), %r8
    jne 2f
    cmp pit_last_count(%rip), %rcx
    jbe 2f
    mov pit_last_count(%rip), %rcx  # reloaded, tick still pending: see above
2:  mov %r8, pit_last_ticks(%rip)
    mov %rcx, pit_last_count(%rip)
    mov $PIT_DIVISOR, %eax          # the counter runs down from PIT_DIVISOR to 1
    mul %r8
    add $PIT_DIVISOR, %rax
    sub %rcx, %rax
    ret

# ANCHOR: kvmclock_read
# kvmclock_read: RAX = nanoseconds, from the pvclock_vcpu_time_info the hypervisor keeps
# (pv.S enabled it). The hypervisor makes the version odd while it rewrites the structure and
# even again after, so a reader retries while it is odd or when it changed during the read.
#     time = system_time + ((TSC - tsc_timestamp) << shift, or >> -shift) * mul >> 32
# The product of a 64-bit delta and the 32-bit mul needs 96 bits: MUL gives all 128 in
# RDX:RAX and SHRD takes bits 95..32, exactly. Clobbers RAX, RCX, RDX, RSI, R8.
kvmclock_read:
1:  mov pvclock + PVCLOCK_VERSION(%rip), %esi
    test $1, %esi
    jnz 4f
    lfence                          # RDTSC must not run before the version was read
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    sub pvclock + PVCLOCK_TSC(%rip), %rax
    movsbl pvclock + PVCLOCK_SHIFT(%rip), %ecx
    test %ecx, %ecx
    js 2f
    shl %cl, %rax
    jmp 3f
2:  neg %ecx
    shr %cl, %rax
3:  mov pvclock + PVCLOCK_MUL(%rip), %r8d
    mul %r8                         # RDX:RAX = delta * mul
    shrd $32, %rdx, %rax            # ... >> 32
    add pvclock + PVCLOCK_SYSTEM(%rip), %rax
    cmp pvclock + PVCLOCK_VERSION(%rip), %esi
    jne 1b                          # rewritten meanwhile: the fields may not belong together
    ret
4:  pause                           # mid-update: let the hypervisor finish
    jmp 1b
# ANCHOR_END: kvmclock_read
