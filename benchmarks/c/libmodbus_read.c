/* The C floor for bench_modbus_pipeline.py: libmodbus reads 8 x 125 holding registers,
 * one request at a time (libmodbus has no pipelining), `repeat` times per round.
 * usage: libmodbus_read HOST PORT ROUNDS REPEAT; prints one line per round: seconds per
 * read (8 requests). */
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    modbus_t *ctx = modbus_new_tcp(argv[1], atoi(argv[2]));
    if (ctx == NULL || modbus_connect(ctx) == -1) return 1;
    int rounds = atoi(argv[3]), repeat = atoi(argv[4]);
    uint16_t regs[1000];
    for (int r = 0; r < rounds; r++) {
        double started = now();
        for (int k = 0; k < repeat; k++)
            for (int i = 0; i < 8; i++)
                if (modbus_read_registers(ctx, 1000 + 125 * i, 125, regs + 125 * i) != 125)
                    return 1;
        printf("%.9f\n", (now() - started) / repeat);
        fflush(stdout);
    }
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
