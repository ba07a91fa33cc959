"""The text under the deployment benchmark's loopback table (bench.py writes it into
docs/performance-network.md). It quotes measured figures: update it with the table."""

LOOPBACK_NOTES = ["""
What a networked job pays for beyond the in-process run: every job and round crosses
process boundaries, and every byte between processes is encrypted. Bulk data is sealed
with AES-256-GCM (AES-NI: about 0.25 ms per MB, both ends together) on a second
connection per link, keyed over CURVE, whose own cipher (libzmq's XSalsa20-Poly1305)
costs about 3.7 ms per MB here (docs/deployment.md, sealed data). Also in place: BLAS
threads per node from the cores it has, programs cached at the nodes by the sha256 of
their IR (the text travels once per session), input shares sent as 16-byte PRG keys
wherever the receiving party holds a random piece (runtime/protocols/dealing.py: aby3
sends 2 arrays per input instead of 6, semi2k 1 instead of 2), outputs returned in as
few arrays as reconstruction needs, and the semi2k dealer computing correlations ahead
of P0's requests (runtime/protocols/semi2k_ahead.py; `wait_dealer`).""", """
CPU decides the ratio on this machine: three node processes and the driver share two
cores, so a job takes at least its CPU time over two (the last two columns: driver +
node processes, read from /proc, against the in-process cluster's process; the mean of
20 calls after the timed ones). Profiled with perf (all threads; aby3, n = 65,536,
load 2-4), a comparison costs each node about 25 ms (job thread 15, io thread 4.5,
libzmq's io thread 4.5): numpy 3.7, the PRG 1.9, Python 7.6, AES-GCM sealing and
opening 2.1, memcpy 1.6, kernel TCP copies 1.5, the rest of the kernel (TCP, wake-ups)
3.8, libzmq 0.5, other 2.2; the in-process cluster runs the whole job (three parties
and the driver) in 39 ms (numpy 14, Python 6.5, PRG 5.9, memcpy 5.9). So a node pays
about 8 ms per comparison for moving its 9 MB (AES-GCM, kernel, libzmq: about 0.9 ms
per MB) and runs about three times the Python of one in-process party. Its job thread
also waits for the GIL: py-spy finds it in zio.send in 31% of its busy samples, but in
4% of the samples taken while it held the GIL; pyzmq releases the GIL to send, and the
io thread (AES-GCM in `cryptography` runs with the GIL held: sealing shows in 9% of the
GIL-holding samples) or pyzmq's garbage-collector thread (woken after every zero-copy
frame) takes it meanwhile. A product
costs each node 4.5-5 ms (Python 1.9, numpy 0.5, PRG 0.4, AES-GCM 0.45, kernel 1.1)
and the driver 3.5. What is out of reach: at the table's 68 ms of CPU (driver 3.7 +
nodes 64.5) a comparison needs 34 ms on two cores even with both busy all the time,
1.19x the in-process 29 ms; 1.3x (37 ms) leaves 3 ms for the rounds, in which the
parties' work alternates instead of overlapping (measured: 42 ms, 1.47x). Moving the
bytes (AES-GCM, kernel, libzmq) is about 8 ms per node, 24 of the 68: the sealing is
required, the kernel's share is loopback TCP; what a node could still shed is Python
and GIL hand-offs around its sends and receives.""", """
Consent travels with the job (spu_lite/deploy/consent.py; why it keeps every rule:
docs/security.md, consent). Until this version a node sent its verdict and waited for
every other party's before it computed: `consent_wait` took 0.5-4 ms of `setup`, the
skew between the nodes' starts plus one message latency. Now a node's verdict rides on
its first message of the job to each peer, a node starts at once, and it reads every
verdict before anything leaves the computation. Paired against main in one driver
process (two loopback clusters, one with main's nodes, calls alternating, 30 calls
per case, two rounds of the eight cases, load 3.6-4.5): `setup` 0.7-4.7 ms -> 0.1 ms,
but `dispatch` grew by 0-4 ms (median 0.7), because the node that receives only keys
(party 0) now computes while the others are still receiving their megabyte of
shares, on the same two cores; end to end new / main: median 0.99 over the 16 pairs
(0.85-1.06; products: aby3 1.03 and 0.90, semi2k 0.85 and 0.94), nodes' CPU per job
unchanged (0.95-1.08). Carrying the verdict on a message already sent, instead of in
a message of its own (six fewer messages per aby3 job), measured 0.97x wall and 0.98x
node CPU (12 cases paired the same way, load 4-5.6). Where the time is latency, not
CPU, the round trip is gone: on an emulated WAN (rtt 20 ms, 100 Mbit/s), paired the same
way at load 2-3.3, aby3 mul 153.9 -> 145.2 ms (0.94), aby3 less 835.7 -> 823.6 ms
(0.99), semi2k mul 228.7 -> 218.6 ms (0.96), semi2k less 1180.5 -> 1176.9 ms (1.00): one
one-way latency (10 ms) per job. The table above was measured at load 4-5, which slowed
the in-process runs more than the nodes (in-process aby3 mul 10.3 ms against 6.8 ms at
load 2.3-3.6 in the previous run), so its nodes / in-process ratios are lower than an
idle machine would give: quote the paired ratios for this change, and the previous
version's table for where the machine stands (aby3 mul 1.64, less 1.47; semi2k mul
1.67, less 1.49).""", """
Where a product's time goes (2026-12-08; aby3 mul, n = 65,536; each thread's CPU read
from /proc over 200-400 back-to-back calls, load 4-8): the driver 3.5-4.2 ms per job
(main thread 2.6-3.5, libzmq's io thread 0.6-0.75), each node 4.2-5.5 ms (job thread
2.2-3.7, io thread 0.7-1.4, libzmq's io thread 0.45-0.85, pyzmq's garbage-collector
thread 0.03-0.18), about 60 voluntary context switches per job in all; the in-process
cluster takes 7.6-8.7 ms. perf over the four processes: the Python interpreter 30%, AES
22% (the PRG's AES-CTR 11, AES-GCM sealing and opening 8.5), the kernel 22% (context
switches and wake-ups about 9, TCP copies 5), numpy 17%, libzmq 3.6%. One sealed 512
KiB message between two processes over loopback costs 0.45-0.52 ms of CPU in all
(sender 0.22-0.24, receiver 0.25-0.29; unsealed 0.25-0.29), of which AES-GCM itself
is 36 us per side (0.07 ms per MB and side: less than the figure above); the rest is
fresh buffers, libzmq, the kernel's copies and Python. So a product's 14 messages and
4.5 MB (requests 2 MB, replies 1 MB, between the parties 1.5 MB) account for about 5-6
ms of the 11-12 ms of CPU it takes beyond the in-process run, spread over four threads
per process: no single piece is large. Per-job Python at a node (program lookup,
policy, consent, job log) is 0.2-0.3 ms. Traced (load 4), the driver prepared and
encoded for 0.6 ms and dealt the two inputs for 0.6 ms before it sent anything; party 0
(keys only) started 1.7 ms into the call, parties 1 and 2 (a megabyte each) at 3.0, and
party 0's truncation message was the last thing the others waited for. Tried and
dropped: sending the key-only party its request before dealing the others' corrections
(party 0 computes on the other core meanwhile): on a quiet machine (2026-12-08 03:01
UTC, load 1.6-2.3, whole bench runs alternating, --repeat 21) nodes / in-process for
aby3 mul was 1.58 and 1.60 before, 1.66 and 1.59 with it; semi2k mul 1.46 and 1.39,
1.44 and 1.45; CPU per job unchanged. **Measured quiet, the 1.3x goal is not met** (the
table above was taken at load 4-5, which slows the in-process runs more than the
nodes): at load 0.5-2.3 (2026-12-08, 01:40 and 03:01 UTC, four runs, --repeat 21),
nodes / in-process: aby3 mul 1.58-1.73, matmul_256 1.21-1.25, less 1.30-1.35, relu
1.32-1.36; semi2k mul 1.39-1.46, matmul_256 0.95-1.03, less 1.27-1.34, relu 1.27-1.36;
ours / SPU's multi-process runtime stays 0.19-0.42. At 16-20 ms of CPU per aby3 product
against 7.6-8.7 ms in-process, two cores need at least 8-10 ms even with perfect
overlap, about 1.15x, before the rounds; what is left to take is the transport's thread
hand-offs per message (a Python io thread, libzmq's io thread, pyzmq's
garbage-collector wake-ups) and one sealed frame per array.""", """
Tried and dropped (paired runs against the previous main, alternating, medians; the
machine was shared at load 2-8, and at that noise none of them beat main every time):
(1) copying frames below 4 MiB into the zmq message instead of sending them zero-copy,
which spares pyzmq's garbage-collector thread a wake-up and a GIL hand-off per frame
(about 13 per node and comparison): nodes' CPU per job 0.88x (aby3 less) and 0.95x
(aby3 mul) at load 6-8, but 1.06x and 1.17x (wall 1.19x for mul) at load 3-4; (2) the
job thread receiving its peers' sealed data itself, on a socket of its own, instead of
the io thread opening and filing it and waking it: a two-party ping-pong of 256 KiB got
faster (0.60 vs 0.84 ms per round trip, 0.26 vs 0.37 ms of CPU), jobs did not (nodes'
CPU per aby3 comparison 1.00-1.03x, wall 1.2-1.5x: the io thread had been opening
messages on the other core while the job thread computed); (3) a GIL switch interval
of 0.2 ms instead of 5 in the nodes: wall 0.87x (aby3 less), 1.00x (aby3 mul), 1.03x
(semi2k less), within noise; (4) the driver sending the parties' requests most input
bytes first (aby3: parties 1 and 2 get 1 MB of shares each for a product, party 0
only keys, so party 0 went first and started long before the others): 0.985x median
over 8 cases paired in one process at load 3-5, 3 of them slower; (5) carrying each
verdict on the first message to a peer but sending it to peers that get none only
before the node returns anything: aby3 mul 1.22x, less 1.08x (load 5.7), the last
verdict became a hop on the critical path; sending them when the node first waits
instead was kept. The data path has no copy left to remove: encoding hands
the arrays to zmq as buffers, AES-GCM writes each ciphertext once into a fresh buffer
that libzmq sends from, libzmq reads a large message straight into its buffer, and
AES-GCM opens it into a fresh writable array that numpy views in place. Earlier
rounds cut the driver's CPU per job (allocator tuned like the parties',
runtime/alloc.py; the IR printed and hashed once per program; zmq with int flags,
runtime/net/zio.py) and the nodes' per-job costs (programs cached by digest, BLAS
threads from the cores, input shares as PRG keys)."""]

# What the phase table's columns mean (driver._phases, jobs.run_job).
PHASES_INTRO = """
Where the time of the networked calls went (ms, median over the timed calls of each
phase; node phases are the max over the computing parties; `run_wait` is the part of
`run` spent waiting for peers (`wait_dealer`: waiting for the semi2k dealer's
correlations); `consent_wait` the part of `run` spent reading the other parties'
verdicts: they come with each peer's first message of the job, or on their own before
the peer returns anything (spu_lite/deploy/consent.py), so it is mostly the wait for a
late peer's first message, and it absorbs the skew between the nodes' starts; `setup` is the node's work before the run (judging the job, its inputs,
the protocol session); `transit` is the rest of the driver's round trip (encoding,
encryption, hand-offs), `dispatch` the part until the last node started (`queue`: of
it, the hand-off of the request from a node's io thread to its job thread), `back` the
part after the last node finished):"""
