"""A wall-clock shim preloaded into the exporter (never the harness) for clock faults: it adds the
offset written in ``$FAULTLINE_WALLCLOCK_FILE`` (seconds, re-read at most every 200 ms of real
monotonic time; optionally followed by a rate and the monotonic nanosecond it counts from, for a
clock that runs fast or slow) to CLOCK_REALTIME as ``clock_gettime``, ``gettimeofday`` and
``time`` report it; CLOCK_MONOTONIC and every other clock are untouched, as in a real NTP step.

Why not libfaketime, which the issue names: Debian bookworm's 0.9.10 breaks Python 3.11's
``time.sleep`` as soon as the monotonic clock is left alone (its ``clock_nanosleep`` hands the
kernel a negative time: EINVAL, wolfcw/libfaketime#426, fixed after that release), and faking the
monotonic clock too would make a wall-clock step look like a monotonic one, which no real clock
does. This is a few dozen lines of C, compiled once by ``faultline setup`` into the cache.

A process computes absolute deadlines on the realtime clock from what it reads, while the kernel
waits by the real one: ``sem_timedwait`` (Python's multiprocessing waits), ``sem_clockwait`` and
``clock_nanosleep`` on the realtime clock are shifted back, or a 50 ms wait under a step forward
of an hour would last the hour (explore found exactly that, seed 1 run 25, before they were).
Not shifted: ``pthread_cond_timedwait``, whose clock only the condition variable knows (Python's
threading and the JVM wait on the monotonic clock).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import SetupError
from harness.paths import cache_dir
from harness.provision.base import Component, Installed, Log, setup_log
from harness.provision.commands import apt_install, can_apt_install

SHIM_VERSION = "3"
OFFSET_ENV = "FAULTLINE_WALLCLOCK_FILE"
SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*gettime_fn)(clockid_t, struct timespec *);
static gettime_fn real_gettime;
static int64_t offset_ns, read_at_ns = -1000000000000LL;
/* Drift: the fake clock runs at rate_ppb / 1e9 of the real one from anchor_ns (the real
   monotonic time the step wrote), on top of the offset. Rate 1e9 (the default) is no drift. */
static int64_t rate_ppb = 1000000000LL, anchor_ns;

static int64_t monotonic_ns(void) {
    struct timespec ts;
    real_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The file holds "OFFSET [RATE ANCHOR_NS]": re-read at most every 200 ms; plain syscalls only
   (no malloc, no locks: clock_gettime may be called anywhere, a signal handler included). */
static void reread(int64_t now) {
    __atomic_store_n(&read_at_ns, now, __ATOMIC_RELAXED);
    const char *path = getenv("FAULTLINE_WALLCLOCK_FILE");
    char text[128] = {0};
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) return;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return;
    char *end = text;
    double offset = strtod(text, &end), rate = 1.0, anchor = 0.0;
    char *more = end;
    rate = strtod(more, &end);
    if (end == more) rate = 1.0; else anchor = strtod(end, NULL);
    __atomic_store_n(&offset_ns, (int64_t)(offset * 1e9), __ATOMIC_RELAXED);
    __atomic_store_n(&rate_ppb, (int64_t)(rate * 1e9), __ATOMIC_RELAXED);
    __atomic_store_n(&anchor_ns, (int64_t)anchor, __ATOMIC_RELAXED);
}

static int64_t offset(void) {
    int64_t now = monotonic_ns();
    if (now - __atomic_load_n(&read_at_ns, __ATOMIC_RELAXED) >= 200000000LL) reread(now);
    int64_t rate = __atomic_load_n(&rate_ppb, __ATOMIC_RELAXED);
    int64_t drift = 0;
    if (rate != 1000000000LL) {
        int64_t since = now - __atomic_load_n(&anchor_ns, __ATOMIC_RELAXED);
        drift = (int64_t)((double)since * ((double)(rate - 1000000000LL) / 1e9));
    }
    return __atomic_load_n(&offset_ns, __ATOMIC_RELAXED) + drift;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (!real_gettime) real_gettime = (gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int result = real_gettime(id, ts);
    if (result == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        int64_t t = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset();
        ts->tv_sec = t / 1000000000LL;
        ts->tv_nsec = t % 1000000000LL;
    }
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;  /* obsolete */
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    if (tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}

/* An absolute deadline on the realtime clock was computed from the shifted clock: the kernel
   waits by the real one, so shift it back (else a wait of 50 ms lasts an hour, or none at all). */
static struct timespec unshifted(const struct timespec *deadline) {
    if (!real_gettime) real_gettime = (gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int64_t t = (int64_t)deadline->tv_sec * 1000000000LL + deadline->tv_nsec - offset();
    struct timespec real = {t / 1000000000LL, t % 1000000000LL};
    if (real.tv_nsec < 0) { real.tv_sec -= 1; real.tv_nsec += 1000000000LL; }
    return real;
}

int sem_timedwait(sem_t *sem, const struct timespec *deadline) {
    static int (*real)(sem_t *, const struct timespec *);
    if (!real) real = (int (*)(sem_t *, const struct timespec *))dlsym(RTLD_NEXT, "sem_timedwait");
    struct timespec at = unshifted(deadline);
    return real(sem, &at);
}

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *deadline) {
    static int (*real)(sem_t *, clockid_t, const struct timespec *);
    if (!real) real = (int (*)(sem_t *, clockid_t, const struct timespec *))dlsym(RTLD_NEXT, "sem_clockwait");
    if (clock != CLOCK_REALTIME) return real(sem, clock, deadline);
    struct timespec at = unshifted(deadline);
    return real(sem, clock, &at);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remain) {
    static int (*real)(clockid_t, int, const struct timespec *, struct timespec *);
    if (!real) real = (int (*)(clockid_t, int, const struct timespec *, struct timespec *))
        dlsym(RTLD_NEXT, "clock_nanosleep");
    if (clock != CLOCK_REALTIME || !(flags & TIMER_ABSTIME)) return real(clock, flags, request, remain);
    struct timespec at = unshifted(request);
    return real(clock, flags, &at, remain);
}
"""


class Wallclock(Component):
    name = "wallclock"
    debian_packages = ["gcc", "libc6-dev"]

    def _cached(self) -> Path:
        return cache_dir() / f"wallclock-{SHIM_VERSION}" / "libfaultline-wallclock.so"

    def locate(self) -> Installed | None:
        path = self._cached()
        return Installed(self.name, str(path), SHIM_VERSION, "cache") if path.is_file() else None

    def install(self, log: Log) -> Installed:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None and can_apt_install():
            apt_install(self.debian_packages, setup_log(), what="installing a C compiler for the wall-clock shim")
            compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise SetupError(f"wallclock: no C compiler to build the shim; {self.how_to_install()}")
        target = self._cached()
        target.parent.mkdir(parents=True, exist_ok=True)
        log("building the wall-clock shim (clock faults)")
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            source, built = Path(work) / "wallclock.c", Path(work) / target.name
            source.write_text(SOURCE)
            proc = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(built), str(source), "-ldl"],
                                  capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode != 0:
                raise SetupError(f"wallclock: the shim did not compile: {proc.stderr.strip()[:400]}")
            built.replace(target)
        found = self.locate()
        if found is None:
            raise SetupError("wallclock: built the shim but cannot find it")
        return found

    def how_to_install(self) -> str:
        return "install a C compiler (Debian: `apt-get install gcc libc6-dev`) and run `faultline setup`"
