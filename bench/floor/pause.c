/*
 * A child that costs nothing to start: a static program without the C library that only
 * waits, forever, for a signal. `bench/run.py --only scale --scale-child static` puts it
 * first in PATH as `sleep`, so that the scale scenario times what starting a process costs
 * the manager (or bash, or the C floor) rather than the C library's start-up in each child
 * (~2 ms of CPU each on this project's benchmark machine).
 *
 * Built by bench/run.py with `cc -O2 -static -nostdlib`.
 */
void _start(void) {
    for (;;) {
#if defined(__x86_64__)
        /* pause() */
        __asm__ volatile("mov $34, %%eax\n\tsyscall" ::: "rax", "rcx", "r11", "memory");
#elif defined(__aarch64__)
        /* ppoll(NULL, 0, NULL, NULL): waits until a signal arrives */
        register long x8 __asm__("x8") = 73;
        register long x0 __asm__("x0") = 0;
        register long x1 __asm__("x1") = 0;
        register long x2 __asm__("x2") = 0;
        register long x3 __asm__("x3") = 0;
        __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
#else
#error "pause.c knows the system calls of x86_64 and aarch64 only"
#endif
    }
}
