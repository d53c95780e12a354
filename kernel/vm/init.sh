#!/bin/busybox sh
# /init of the llamux test VM: loads llamux.ko, checks it against userspace llamux in the same
# VM, stresses it, and powers off. The last line says LLAMUX-VM-RESULT: PASS or FAIL.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
export PATH=/bin
. /test.env   # PROMPT, N_TOKENS, N_CTX, STRESS_SECONDS, STRESS_TOKENS, SPEED_TOKENS, MODEL_NAME
echo "llamux-vm: kernel $(uname -r), $(nproc) cpus, model $MODEL_NAME"
# The mitigations the module's return-thunk and retpoline sites are patched for.
for v in retbleed spec_rstack_overflow spectre_v2; do
  echo "llamux-vm: $v: $(cat /sys/devices/system/cpu/vulnerabilities/$v 2>/dev/null)"
done
fail=0
pass() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
now_cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }   # centiseconds since boot
model=/lib/firmware/llamux/model.gguf

# --- broken models are refused cleanly ---
for m in /models/truncated.gguf /models/garbage.gguf /models/missing.gguf; do
  if insmod /llamux.ko model=$m 2>/tmp/err; then
    bad "insmod accepted $m"; rmmod llamux
  else
    pass "insmod refuses $m: $(dmesg | grep 'llamux:' | tail -n1)"
  fi
done
if insmod /llamux.ko sha256=0000000000000000000000000000000000000000000000000000000000000000 2>/dev/null; then
  bad "insmod accepted a wrong digest"; rmmod llamux
else
  pass "insmod refuses a wrong digest: $(dmesg | grep 'llamux:' | tail -n1)"
fi

# --- signed models, the audit ring, per-uid quotas, answers per uid (kernel/vm/trust.sh) ---
. /trust.sh

# --- the good model loads, with its digest checked ---
# haikus=0: the panic haiku (generated after load, tested by `cargo xtask image --test`) would
# add their own sessions to the counts and the timings below.
if insmod /llamux.ko sha256=$(cat /models/model.sha256) haikus=0; then
  pass "insmod with digest: $(dmesg | grep 'llamux: loaded' | tail -n1)"
else
  bad "insmod of the good model"; echo "LLAMUX-VM-RESULT: FAIL"; poweroff -f
fi
cat /proc/llamux/status

# --- bad config writes change nothing ---
before=$(cat /proc/llamux/config)
for w in "temp=abc" "n_ctx=1" "top_p=2.0" "bogus=1" "max_tokens=0" "temp=0.5 n_ctx=999999"; do
  if echo "$w" > /proc/llamux/config 2>/dev/null; then bad "config accepted '$w'"; fi
done
[ "$before" = "$(cat /proc/llamux/config)" ] && pass "invalid config writes rejected, nothing changed" || bad "config changed by invalid writes"
echo "n_ctx=$N_CTX max_tokens=$N_TOKENS temp=0 timeout=600" > /proc/llamux/config && pass "config: $(tr '\n' ' ' < /proc/llamux/config)"

# --- kernel and userspace generate the same text (greedy, all CPUs each; the same stored
# layout of the matrices in both, see the speed comparison below) ---
{ exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /tmp/k.txt; exec 3>&-; }
LLAMUX_LAYOUT=rows llamux run -m $model -p "$PROMPT" -n $N_TOKENS --temp 0 -c $N_CTX -t $(nproc) > /tmp/u.txt 2>/tmp/u.err
{ cat /tmp/k.txt; echo; } > /tmp/k2.txt
echo "kernel:    $(cat /tmp/k.txt)"
echo "userspace: $(cat /tmp/u.txt)"
if cmp -s /tmp/k2.txt /tmp/u.txt && [ -s /tmp/k.txt ]; then pass "same output in kernel and userspace"; else bad "outputs differ"; fi
# Decoding speed at all CPUs each, in turns (kernel, userspace) over five rounds. On a shared
# machine under TCG two identical runs here differ by up to 15%, so this figure only has to show
# that the kernel's pool works (>= 0.80x); the exact comparison is the side-by-side one below.
# Both read the matrices as stored, in place: the module has no interleaved copy of them (it
# would be a second copy of the matrices in kernel memory), and userspace, which makes one where
# that pays (Q4_K on AVX2, for this model), is held to the same layout (LLAMUX_LAYOUT=rows), so
# that the figures compare the two hosts, not two layouts.
sed -n 's/.* \([0-9.]*\) tok\/s.*/\1/p' /tmp/u.err | tail -n1 > /tmp/ut.txt
for round in 2 3 4 5; do
  { exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /dev/null; exec 3>&-; }
  LLAMUX_LAYOUT=rows llamux run -m $model -p "$PROMPT" -n $N_TOKENS --temp 0 -c $N_CTX -t $(nproc) > /dev/null 2>/tmp/u.err
  sed -n 's/.* \([0-9.]*\) tok\/s.*/\1/p' /tmp/u.err | tail -n1 >> /tmp/ut.txt
done
kt=$(grep tokens_per_s /proc/llamux/stats | cut -d' ' -f2)
ut=$(awk '{ s += $1; n++ } END { if (n) printf "%.3f", s / n }' /tmp/ut.txt)
awk -v kt="$kt" -v ut="$ut" -v n="$(nproc)" 'BEGIN {
  printf "speed, %d threads each, in turns: kernel %.3f tok/s, userspace %.3f tok/s, ratio %.3f\n", n, kt, ut, kt / ut;
  exit (kt / ut >= 0.80) ? 0 : 1 }' && pass "kernel decoding at $(nproc) threads >= 0.80x userspace" || bad "kernel decoding at $(nproc) threads below 0.80x userspace"
cat /proc/llamux/stats

# --- the one-shot form: echo a prompt, read the answer from /proc/llamux/response ---
echo "$PROMPT" > /proc/llamux/prompt
cat /proc/llamux/response > /tmp/r.txt
[ -s /tmp/r.txt ] && pass "echo > prompt; cat response: $(cat /tmp/r.txt)" || bad "no answer in /proc/llamux/response"

# --- a prompt in several writes, and read after poll says so: the same text as one write ---
{ exec 3<>/proc/llamux/prompt; printf '%s' "${PROMPT%% *}" >&3; printf ' %s' "${PROMPT#* }" >&3; cat <&3 > /tmp/mw.txt; exec 3>&-; }
cmp -s /tmp/mw.txt /tmp/k.txt && pass "a prompt in two writes gives the one-write text" || bad "a prompt in two writes: '$(cat /tmp/mw.txt)'"
# lxpoll: three-byte writes, poll before reading; checks POLLOUT before the start and not after, ESPIPE, EBUSY.
if lxpoll "$PROMPT" > /tmp/poll.txt 2>/tmp/poll.err && cmp -s /tmp/poll.txt /tmp/k.txt; then
  pass "poll: $(cat /tmp/poll.err), same text"
else
  bad "poll: $(cat /tmp/poll.err); text '$(cat /tmp/poll.txt)'"
fi

# --- the longest prompt (64 KiB, LX_MAX_PROMPT) starts and is answered; one byte more is refused ---
# Its tokenizing is done in bounded pieces with a scheduling point between them (never one long
# preempt-off stretch; the kernel log's lockup check below covers it). A 27-byte word that is
# one token of the llama vocabulary keeps the prompt's feeding short: about 2400 tokens.
printf ' административ' > /tmp/big.txt
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do cat /tmp/big.txt /tmp/big.txt > /tmp/big2.txt; mv /tmp/big2.txt /tmp/big.txt; done
head -c 65536 /tmp/big.txt > /tmp/max.txt
head -c 65537 /tmp/big.txt > /tmp/over.txt
echo "n_ctx=8192 max_tokens=4 temp=0 timeout=600" > /proc/llamux/config
t0=$(now_cs)
{ exec 3<>/proc/llamux/prompt; cat /tmp/max.txt >&3; cat <&3 > /tmp/max.out 2>/tmp/max.err; exec 3>&-; }
t1=$(now_cs)
( exec 3<>/proc/llamux/prompt; cat /tmp/over.txt >&3 ) 2>/tmp/over.err && over=accepted || over=refused
if [ "$(wc -c < /tmp/max.txt)" = 65536 ] && [ -s /tmp/max.out ] && [ $over = refused ] && grep -qi "too long" /tmp/over.err; then
  pass "a 64 KiB prompt is answered in $((t1 - t0))0 ms ('$(cat /tmp/max.out)'); 65537 bytes are refused ($(cat /tmp/over.err))"
else
  bad "64 KiB prompt: answer '$(cat /tmp/max.out)' ($(cat /tmp/max.err)); 65537 bytes $over ($(cat /tmp/over.err))"
fi
echo "n_ctx=$N_CTX max_tokens=$N_TOKENS temp=0 timeout=600" > /proc/llamux/config

# --- timeouts: a reader gets ETIMEDOUT at its deadline; so does an unread detached answer ---
# The whole context (the tiny model's 512 positions) takes longer than the timeout to fill.
echo "n_ctx=512 max_tokens=60000 timeout=3" > /proc/llamux/config
t0=$(now_cs)
( exec 3<>/proc/llamux/prompt; printf 'Time me out' >&3; cat <&3 > /dev/null 2>/tmp/to.err; echo $? > /tmp/to.rc )
t1=$(now_cs)
if [ "$(cat /tmp/to.rc)" != 0 ] && grep -qi "timed out" /tmp/to.err && [ $((t1 - t0)) -ge 250 ] && [ $((t1 - t0)) -lt 2000 ]; then
  pass "timeout=3: the reader got '$(cat /tmp/to.err)' after $((t1 - t0))0 ms"
else
  bad "timeout=3: reader exit $(cat /tmp/to.rc) after $((t1 - t0))0 ms: $(cat /tmp/to.err)"
fi
echo "Never read, times out" > /proc/llamux/prompt
sleep 5
t0=$(now_cs)
cat /proc/llamux/response > /dev/null 2>/tmp/tor.err
rc=$?
t1=$(now_cs)
if [ $rc != 0 ] && grep -qi "timed out" /tmp/tor.err && [ $((t1 - t0)) -lt 200 ]; then
  pass "timeout=3: the unread answer had ended at its deadline ('$(cat /tmp/tor.err)', read in $((t1 - t0))0 ms)"
else
  bad "timeout=3: the unread answer: exit $rc after $((t1 - t0))0 ms: $(cat /tmp/tor.err)"
fi
echo "n_ctx=$N_CTX max_tokens=$N_TOKENS temp=0 timeout=600" > /proc/llamux/config

# --- continuous batching: 8 sessions decode together, each giving the text it gives alone ---
# Eight prompts of different lengths, greedy, BATCH_TOKENS tokens each, run one after another
# (four, then the other four) and all eight at once (twice), alternating so that the machine's
# speed swings hit both alike; together, the engine decodes them in shared steps, one pass over
# the weights for all. Tokens per second from the stats: tokens over the time of the engine's
# decoding steps. The check is that the sessions were batched (most steps decode several) and
# lose no throughput by it; the ratio itself is reported: under TCG arithmetic, not reading the
# weights, is what a token costs, so it is small for the tiny model (the core's own
# `llamux bench --sessions 8` gains as little under user-mode emulation).
BATCH_TOKENS=$((SPEED_TOKENS / 4))
stat() { grep "^$1:" /proc/llamux/stats | cut -d' ' -f2; }
snap() { echo "$(stat tokens) $(stat engine_decode_us) $(stat engine_steps) $(now_cs)"; }
bprompt() { printf '%s %s' "$PROMPT" "$(seq -s ' ' 1 $1)"; }
alone() {
  for i in "$@"; do
    { exec 3<>/proc/llamux/prompt; bprompt $i >&3; cat <&3 > /tmp/alone$i.txt; exec 3>&-; }
  done
}
together() {
  for i in 1 2 3 4 5 6 7 8; do
    ( exec 3<>/proc/llamux/prompt; bprompt $i >&3; cat <&3 > /tmp/together$1-$i.txt; exec 3>&- ) &
  done
  wait
}
# phase N COMMAND...: runs it and records "N tokens us steps centiseconds" before and after.
phase() { n=$1; shift; before=$(snap); "$@"; echo "$n $before $(snap)" >> /tmp/batch.txt; }
echo "n_ctx=$N_CTX max_tokens=$BATCH_TOKENS temp=0 timeout=600" > /proc/llamux/config
: > /tmp/batch.txt
phase 1 alone 1 2 3 4
phase 8 together a
phase 1 alone 5 6 7 8
phase 8 together b
same=0
for i in 1 2 3 4 5 6 7 8; do
  for r in a b; do
    if [ -s /tmp/alone$i.txt ] && cmp -s /tmp/alone$i.txt /tmp/together$r-$i.txt; then
      same=$((same + 1))
    else
      echo "session $i alone:    $(cat /tmp/alone$i.txt)"
      echo "session $i together: $(cat /tmp/together$r-$i.txt)"
    fi
  done
done
[ $same = 16 ] && pass "8 concurrent greedy sessions, twice: each text equals its prompt run alone" || bad "$((16 - same)) of 16 concurrent sessions differ from their prompt run alone"
awk '{ k = ($1 == 8); t[k] += $6 - $2; u[k] += $7 - $3; s[k] += $8 - $4; w[k] += $9 - $5 } END {
  if (u[0] <= 0 || u[1] <= 0 || s[0] <= 0 || s[1] <= 0 || w[0] <= 0 || w[1] <= 0) { print "batching: missing figures"; exit 1 }
  one = t[0] / (u[0] / 1e6); agg = t[1] / (u[1] / 1e6);
  printf "kernel 8-session aggregate: %.3f tok/s vs 1 session %.3f tok/s (%.2fx); %d tokens in %d steps (%.2f sessions per step) vs %d in %d; by the wall clock %.2f tok/s vs %.2f tok/s\n",
    agg, one, agg / one, t[1], s[1], t[1] / s[1], t[0], s[0], t[1] / (w[1] / 100), t[0] / (w[0] / 100);
  exit (t[1] / s[1] >= 4 && agg / one >= 0.9) ? 0 : 1 }' /tmp/batch.txt \
  && pass "8 sessions decoded together (>= 4 per step) without losing throughput (>= 0.9x one alone)" \
  || bad "8 concurrent sessions not batched (< 4 per step), or slower in all than one alone (< 0.9x)"

# --- 8 concurrent sessions ---
echo "n_ctx=$N_CTX max_tokens=$STRESS_TOKENS temp=0.8 seed=7 timeout=600" > /proc/llamux/config
end=$(( $(now_cs) + STRESS_SECONDS * 100 ))
rounds=0
while [ $(now_cs) -lt $end ]; do
  for i in 1 2 3 4 5 6 7 8; do
    ( exec 3<>/proc/llamux/prompt; printf 'Session %s says' "$i" >&3; cat <&3 > /tmp/s$i.txt; exec 3>&- ) &
  done
  wait
  for i in 1 2 3 4 5 6 7 8; do [ -s /tmp/s$i.txt ] || bad "session $i of round $rounds gave no answer"; done
  rounds=$((rounds + 1))
done
pass "8 concurrent sessions: $rounds rounds in ${STRESS_SECONDS}s, all answered"

# --- closing mid-generation and killing a blocked reader stop the work promptly ---
echo "max_tokens=60000 temp=0" > /proc/llamux/config
t0=$(now_cs)
( exec 3<>/proc/llamux/prompt; printf 'Close me' >&3; head -c 1 <&3 > /dev/null; exec 3>&- )
t1=$(now_cs)
sleep 1
live=$(grep live_sessions /proc/llamux/stats | cut -d' ' -f2)
[ "$live" = 0 ] && pass "close mid-generation: returned $((t1 - t0))0 ms after the first byte, live sessions $live" || bad "session still live after close ($live)"
( exec 3<>/proc/llamux/prompt; printf 'Kill me' >&3; exec cat <&3 > /dev/null ) &
reader=$!
sleep 2
t0=$(now_cs)
kill -TERM $reader 2>/dev/null
wait $reader 2>/dev/null
t1=$(now_cs)
sleep 1
live=$(grep live_sessions /proc/llamux/stats | cut -d' ' -f2)
[ "$live" = 0 ] && pass "killed reader exited after $((t1 - t0))0 ms, live sessions $live" || bad "session live after killing its reader ($live)"

# --- limits: max_sessions, and the KV bound (kv_max_mb) refusing with ENOMEM before allocating ---
rmmod llamux && insmod /llamux.ko max_sessions=2 kv_max_mb=8 haikus=0 || bad "reload with max_sessions=2 kv_max_mb=8"
echo "n_ctx=64 max_tokens=60000 temp=0 timeout=600" > /proc/llamux/config
# A session takes its place when its prompt starts (the first read), not at open: with two
# started, a third prompt is refused with EBUSY from its read (cat names the errno; busybox head
# and dd do not), and served once the others closed.
( exec 4<>/proc/llamux/prompt 5<>/proc/llamux/prompt
  printf '%s' "$PROMPT" >&4; printf '%s' "$PROMPT" >&5
  dd bs=1 count=1 <&4 > /dev/null 2>&1; dd bs=1 count=1 <&5 > /dev/null 2>&1
  if ( exec 6<>/proc/llamux/prompt && printf '%s' "$PROMPT" >&6 && cat <&6 > /dev/null ) 2>/tmp/ms.err; then
    echo served; else echo refused; fi > /tmp/ms.txt )
if [ "$(cat /tmp/ms.txt)" = refused ] && grep -qi busy /tmp/ms.err \
  && ( exec 6<>/proc/llamux/prompt && printf '%s' "$PROMPT" >&6 && dd bs=1 count=1 <&6 > /dev/null 2>&1 ); then
  pass "max_sessions=2: a third prompt is refused ($(cat /tmp/ms.err)), and served once the others closed"
else
  bad "max_sessions=2: third prompt $(cat /tmp/ms.txt): $(cat /tmp/ms.err)"
fi
echo "n_ctx=32768" > /proc/llamux/config
( exec 3<>/proc/llamux/prompt; printf 'Too much memory' >&3; cat <&3 > /dev/null 2>/tmp/kv.err; echo $? > /tmp/kv.rc )
echo "n_ctx=64 max_tokens=4" > /proc/llamux/config
( exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /tmp/kv.txt; exec 3>&- )
kvb=$(grep '^kv_bytes:' /proc/llamux/stats | cut -d' ' -f2)
if [ "$(cat /tmp/kv.rc)" != 0 ] && grep -qi memory /tmp/kv.err && [ -s /tmp/kv.txt ] && [ "$kvb" = 0 ]; then
  pass "kv_max_mb=8: a 32768-position session is refused ($(cat /tmp/kv.err)), a 64-position one answers, kv_bytes back to $kvb"
else
  bad "kv_max_mb=8: 32768 positions: exit $(cat /tmp/kv.rc) $(cat /tmp/kv.err); 64: '$(cat /tmp/kv.txt)'; kv_bytes $kvb"
fi

# --- decoding speed: kernel and userspace side by side, one thread each ---
# Both run at the same time, each on its own CPU, so that the machine's speed swings hit both
# alike; six rounds of SPEED_TOKENS tokens. Kernel: tokens / decoding time from its stats;
# userspace: the same sums from the summaries llamux prints ("…; N tokens in M ms, …").
# The ratio is a benchmark figure (the target, >= 0.95, is printed met or not): under TCG it
# moves with the host (0.98-1.01 on one machine, 0.92-0.94 on another with the same engine code),
# so the test only fails where the module's decoding is plainly broken (< 0.80x).
rmmod llamux && insmod /llamux.ko threads=1 haikus=0 || bad "reload with threads=1"
echo "n_ctx=$N_CTX max_tokens=$SPEED_TOKENS temp=0 timeout=600" > /proc/llamux/config
: > /tmp/u1.err
for round in 1 2 3 4 5 6; do
  ( exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /dev/null; exec 3>&- ) &
  kreader=$!
  LLAMUX_LAYOUT=rows llamux run -m $model -p "$PROMPT" -n $SPEED_TOKENS --temp 0 -c $N_CTX -t 1 > /dev/null 2>>/tmp/u1.err
  wait $kreader
done
ktok=$(grep '^tokens:' /proc/llamux/stats | cut -d' ' -f2)
kus=$(grep '^decode_us:' /proc/llamux/stats | cut -d' ' -f2)
sed -n 's/.*; \([0-9]*\) tokens in \([0-9]*\) ms.*/\1 \2/p' /tmp/u1.err > /tmp/u1.txt
awk -v ktok="$ktok" -v kus="$kus" '{ ut += $1; ums += $2; n++ } END {
  if (n != 6 || ums == 0 || kus == 0) { print "speed: missing figures"; exit 1 }
  kt = ktok / (kus / 1e6); u = ut / (ums / 1e3);
  printf "speed, 1 thread each, side by side: kernel %.3f tok/s (%d tokens), userspace %.3f tok/s (%d tokens), ratio %.3f (target >= 0.95: %s)\n", kt, ktok, u, ut, kt / u, (kt / u >= 0.95) ? "met" : "not met";
  exit (kt / u >= 0.80) ? 0 : 1 }' /tmp/u1.txt && pass "kernel decoding >= 0.80x userspace (1 thread each, side by side)" || bad "kernel decoding slower than 0.80x userspace (1 thread each, side by side)"

# --- unload with live sessions (one being read, one unread), and the kernel log stays clean ---
echo "max_tokens=60000 temp=0" > /proc/llamux/config
( exec 3<>/proc/llamux/prompt; printf 'Still reading' >&3; exec cat <&3 > /dev/null ) 2>/dev/null &
reader=$!
echo "Never read" > /proc/llamux/prompt
sleep 1
live=$(grep live_sessions /proc/llamux/stats | cut -d' ' -f2)
rmmod llamux && pass "rmmod with $live live sessions: $(dmesg | grep 'llamux: unloaded' | tail -n1)" || bad "rmmod"
wait $reader 2>/dev/null
# --- a panic inside the engine: its session fails, later work is refused, the machine stays up ---
# llamux-fault.ko is the debug build (kernel/build.sh --fault-inject): its `fault` parameter makes
# the engine panic once, at the site given.
fault_case() {
  if ! insmod /llamux-fault.ko haikus=0; then bad "insmod llamux-fault.ko"; return; fi
  echo "n_ctx=$N_CTX max_tokens=2000 temp=0 timeout=600" > /proc/llamux/config
  before=$(dmesg | grep -c 'llamux: engine panic')
  echo $1 > /sys/module/llamux/parameters/fault
  ( exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /dev/null 2>/tmp/f.err; echo $? > /tmp/f.rc )
  after=$(dmesg | grep -c 'llamux: engine panic')
  if [ "$(cat /tmp/f.rc)" != 0 ] && [ $((after - before)) = 1 ]; then
    pass "fault $1 ($2): the reader got '$(cat /tmp/f.err)'; one line: $(dmesg | grep 'llamux: engine panic' | tail -n1)"
  else
    bad "fault $1 ($2): reader exit $(cat /tmp/f.rc) ($(cat /tmp/f.err)), $((after - before)) panic lines"
  fi
  if ( exec 3<>/proc/llamux/prompt ) 2>/tmp/f2.err; then
    bad "fault $1: an open after the panic was accepted"
  else
    pass "fault $1: later opens are refused ($(cat /tmp/f2.err)); status: $(grep '^engine_dead:' /proc/llamux/status)"
  fi
  if rmmod llamux; then pass "fault $1: rmmod: $(dmesg | grep 'llamux: unloaded' | tail -n1)"; else bad "fault $1: rmmod"; fi
}
fault_case 1 "a decoding step, on the engine thread"
fault_case 2 "a parallel task, on a pool worker"
fault_case 3 "a session's setup, on the reader's thread"
fault_case 4 "a parallel task, on the engine thread that owns the pool"
# Memory running out where the core cannot report it (the tokenizer) fails that prompt only.
if insmod /llamux-fault.ko haikus=0; then
  echo "n_ctx=$N_CTX max_tokens=$N_TOKENS temp=0 timeout=600" > /proc/llamux/config
  before=$(dmesg | grep -c 'llamux: engine panic')
  echo 5 > /sys/module/llamux/parameters/fault
  ( exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /dev/null 2>/tmp/f.err; echo $? > /tmp/f.rc )
  { exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /tmp/oom.txt; exec 3>&-; }
  after=$(dmesg | grep -c 'llamux: engine panic')
  bytes=$(grep '^engine_bytes:' /proc/llamux/stats | cut -d' ' -f2)
  if [ "$(cat /tmp/f.rc)" != 0 ] && grep -qi memory /tmp/f.err && [ $after = $before ] && cmp -s /tmp/oom.txt /tmp/k.txt; then
    pass "fault 5 (an allocation fails in the tokenizer): that prompt got '$(cat /tmp/f.err)', the next one the same text, no panic line; engine_bytes $bytes"
  else
    bad "fault 5: reader exit $(cat /tmp/f.rc) ($(cat /tmp/f.err)), $((after - before)) panic lines, next text '$(cat /tmp/oom.txt)'"
  fi
  rmmod llamux || bad "fault 5: rmmod"
else
  bad "insmod llamux-fault.ko (fault 5)"
fi
if insmod /llamux.ko haikus=0; then
  echo "n_ctx=$N_CTX max_tokens=$N_TOKENS temp=0 timeout=600" > /proc/llamux/config
  { exec 3<>/proc/llamux/prompt; printf '%s' "$PROMPT" >&3; cat <&3 > /tmp/after.txt; exec 3>&-; }
  cmp -s /tmp/after.txt /tmp/k.txt && pass "after four engine panics the module loads again and gives the same text" || bad "after the panics: '$(cat /tmp/after.txt)'"
  rmmod llamux || bad "rmmod after the panics"
else
  bad "insmod after the panics"
fi
if dmesg | grep -E "BUG|WARNING|Oops|soft lockup|hard LOCKUP|rcu_sched self-detected stall|detected stall|scheduling while atomic"; then
  bad "kernel log has errors (above)"
else
  pass "kernel log clean (no BUG, WARNING, Oops, lockup or stall)"
fi
[ $fail = 0 ] && echo "LLAMUX-VM-RESULT: PASS" || echo "LLAMUX-VM-RESULT: FAIL"
poweroff -f
