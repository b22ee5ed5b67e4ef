/* vfork_hook.S: vfork, with the shim's hooks kept out of the child.

   A vfork child runs on its parent's memory and TLS until it execs or exits, so anything a hook
   records there would land in the parent's tables (docs/PITFALLS.md, section 5). This vfork sets
   the calling thread's in_vfork flag (preload/thread_state.h), makes the system call the way
   glibc's own vfork does, and clears the flag in the parent. It cannot be written in C: the
   child returns through the same stack frame as the parent, so the return address is kept in a
   register across the system call, not on the stack the child may overwrite. */

#define SYS_vfork 58
#define IN_VFORK_OFFSET 2 /* offsetof(ThreadState, in_vfork) */

        .text
        .globl  vfork
        .type   vfork, @function
        .p2align 4
vfork:
        .cfi_startproc
        movq    dw_thread_state@gottpoff(%rip), %rax
        movb    $1, %fs:IN_VFORK_OFFSET(%rax)
        popq    %rdi                    /* return address: kept in a register, not the stack */
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rdi
        movl    $SYS_vfork, %eax
        syscall
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rip, 0
        testl   %eax, %eax
        jz      1f                      /* the child: the flag stays set until exec or exit */
        movq    dw_thread_state@gottpoff(%rip), %rcx
        movb    $0, %fs:IN_VFORK_OFFSET(%rcx)
        cmpl    $-4095, %eax
        jae     2f
1:      ret
2:      negl    %eax
        movl    %eax, %edi
        jmp     dw_vfork_failed@PLT      /* sets errno, returns -1 to our caller */
        .cfi_endproc
        .size   vfork, .-vfork

        .section .note.GNU-stack,"",@progbits
