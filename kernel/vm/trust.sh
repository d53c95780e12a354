# Sourced by the test VM's /init (kernel/vm/init.sh) with the module unloaded, and leaves it
# unloaded: signed models (pubkey=, signature=), /proc/llamux/audit, per-uid quotas
# (uid_sessions, uid_tokens_per_min) and answers that belong to their uid. Uses init.sh's
# pass/bad, $PROMPT, $N_CTX and $model; the users are alice, bob and carol (uids 1000-1002), made
# here for busybox su.

mkdir -p /etc
printf 'root:x:0:0:root:/:/bin/sh\nalice:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\ncarol:x:1002:1002::/:/bin/sh\n' > /etc/passwd
printf 'root:x:0:\nalice:x:1000:\nbob:x:1001:\ncarol:x:1002:\n' > /etc/group
as() { u=$1; shift; su "$u" -s /bin/sh -c "$*"; }
lastlog() { dmesg | grep 'llamux:' | tail -n1; }
# ask: one request, the answer on stdout; tell: the one-shot form (the answer left for
# /proc/llamux/response); hold N S: N prompt files open, unused, for S seconds.
cat > /tmp/ask <<EOF
#!/bin/sh
exec 3<>/proc/llamux/prompt || exit 1
echo -n '$PROMPT' >&3 || exit 2
cat <&3
EOF
cat > /tmp/tell <<EOF
#!/bin/sh
echo '$PROMPT' > /proc/llamux/prompt
EOF
cat > /tmp/hold <<'EOF'
#!/bin/sh
i=3
while [ $i -lt $((3 + $1)) ]; do eval "exec $i<>/proc/llamux/prompt" || exit 1; i=$((i + 1)); done
echo held
sleep $2
EOF
chmod 755 /tmp/ask /tmp/tell /tmp/hold

# --- signatures: keys and signatures made with userspace llamux ---
llamux keygen -o /tmp/trusted.key > /dev/null && llamux keygen -o /tmp/other.key > /dev/null || bad "llamux keygen"
pub=$(cat /tmp/trusted.key.pub)
llamux sign -m $model --key /tmp/trusted.key > /dev/null || bad "llamux sign"
ln -sf $model /tmp/unsigned.gguf
cp $model /tmp/tampered.gguf && cp $model.sig /tmp/tampered.gguf.sig
printf 'X' | dd of=/tmp/tampered.gguf bs=1 seek=4096 conv=notrunc 2>/dev/null
ln -sf $model /tmp/foreign.gguf
llamux sign -m /tmp/foreign.gguf --key /tmp/other.key -o /tmp/foreign.sig > /dev/null || bad "llamux sign -o"
# refused MODEL ERRNO-TEXT WHAT [PARAMETERS]: insmod fails with that error and one dmesg line.
refused() {
  m=$1; want=$2; what=$3; shift 3
  if insmod /llamux.ko model=$m haikus=0 "$@" 2>/tmp/insmod.err; then
    bad "insmod accepted $what"; rmmod llamux
  elif grep -qi "$want" /tmp/insmod.err; then
    pass "insmod refuses $what ($(sed 's/.*: //' /tmp/insmod.err)): $(lastlog)"
  else
    bad "insmod refused $what with '$(cat /tmp/insmod.err)', not '$want'"
  fi
}
refused /tmp/unsigned.gguf "key not available" "an unsigned model" pubkey=$pub
refused /tmp/tampered.gguf "bad message" "a tampered signed model" pubkey=$pub
refused /tmp/foreign.gguf "rejected" "a model signed by another key" pubkey=$pub signature=/tmp/foreign.sig
refused $model "invalid argument" "a pubkey that is not a key" pubkey=0123
dmesg | grep -q 'llamux: /tmp/tampered.gguf: signature .* refused: the model was changed after signing' \
  && pass "the tampered model's line names the change" || bad "no 'changed after signing' line for the tampered model"

# --- a signed model loads; per-uid sessions, the audit ring, answers per uid ---
if insmod /llamux.ko pubkey=$pub haikus=0 uid_sessions=1; then
  pass "insmod of the signed model: $(dmesg | grep 'llamux: .*signature verified' | tail -n1)"
else
  bad "insmod of the signed model: $(lastlog)"; return
fi
# Prompt files are the administrator's to grant (root's by default): here, to everyone.
chmod 0666 /proc/llamux/prompt
echo "n_ctx=$N_CTX max_tokens=8 temp=0 timeout=600" > /proc/llamux/config
as alice /tmp/hold 1 8 > /tmp/held &
holder=$!
while [ ! -s /tmp/held ] && kill -0 $holder 2>/dev/null; do sleep 0.2; done
if as alice /tmp/ask > /dev/null 2>/tmp/a.err; then
  bad "uid_sessions=1: alice's second prompt file was opened"
else
  grep -qi "busy" /tmp/a.err && pass "uid_sessions=1: alice's second open fails with EBUSY ($(cat /tmp/a.err))" \
    || bad "alice's second open failed otherwise: $(cat /tmp/a.err)"
fi
as bob /tmp/ask > /tmp/bob.txt 2>/tmp/b.err
[ -s /tmp/bob.txt ] && pass "bob is served meanwhile: $(cat /tmp/bob.txt)" || bad "bob not served while alice is at her limit: $(cat /tmp/b.err)"
wait $holder
as alice /tmp/ask > /tmp/alice.txt 2>/tmp/a.err
[ -s /tmp/alice.txt ] && pass "alice is served once her other file is closed" || bad "alice not served after closing: $(cat /tmp/a.err)"
# The one-shot form: each uid reads its own answer, no one else's.
as alice /tmp/tell
if as bob cat /proc/llamux/response > /tmp/r.txt 2>/tmp/r.err; then
  bad "bob read alice's answer: $(cat /tmp/r.txt)"
else
  grep -qi "no data" /tmp/r.err && pass "bob cannot read alice's answer (ENODATA)" || bad "bob's read of the response: $(cat /tmp/r.err)"
fi
cat /proc/llamux/response > /dev/null 2>&1 && bad "root read alice's answer" || pass "nor can root (ENODATA)"
as bob /tmp/tell
as bob cat /proc/llamux/response > /tmp/rb.txt
as alice cat /proc/llamux/response > /tmp/ra.txt
if [ -s /tmp/ra.txt ] && cmp -s /tmp/ra.txt /tmp/alice.txt && [ -s /tmp/rb.txt ]; then
  pass "alice's answer is still hers after bob's (her greedy answer, exactly): $(cat /tmp/ra.txt)"
else
  bad "alice's one-shot answer lost or changed: '$(cat /tmp/ra.txt)' vs '$(cat /tmp/alice.txt)'"
fi
# Audit: one line per request (refusals too), root only, in userspace's format.
as alice cat /proc/llamux/audit > /dev/null 2>/tmp/au.err && bad "alice read /proc/llamux/audit" \
  || pass "/proc/llamux/audit is root's: $(cat /tmp/au.err)"
cat /proc/llamux/audit > /tmp/audit.txt
cat /tmp/audit.txt
sha=$(printf '%s' "$PROMPT" | sha256sum | cut -d' ' -f1)
lines=$(wc -l < /tmp/audit.txt)
ok=1
[ "$lines" = 5 ] || { echo "audit: $lines lines, 5 requests"; ok=0; }
grep -q "^seq=1 time=[0-9]* uid=1000 pid=[0-9]* comm=ask client=- prompt_sha256=[0-9a-f]* tokens_in=0 tokens_out=0 outcome=too_many_sessions$" /tmp/audit.txt || ok=0
# The prompt starts at its first read: the asker recorded is the reader (cat).
grep -q "^seq=2 time=[0-9]* uid=1001 pid=[0-9]* comm=cat client=- prompt_sha256=$sha tokens_in=[1-9][0-9]* tokens_out=[1-9][0-9]* outcome=completed$" /tmp/audit.txt || ok=0
grep -q "^seq=3 .* uid=1000 .* prompt_sha256=$sha .* outcome=completed$" /tmp/audit.txt || ok=0
[ "$(grep -c "uid=100[01] .*comm=tell .*prompt_sha256=$sha .*outcome=completed" /tmp/audit.txt)" = 2 ] || ok=0
[ $ok = 1 ] && pass "audit: one line per request (5), with uid, comm, the prompt's SHA-256, tokens and outcome" \
  || bad "audit lines (above) do not match the requests"
rmmod llamux || bad "rmmod"

# --- tokens per minute; idle opens take no session slot ---
# 10 tokens a minute: one request (its prompt and 8 tokens) uses them for a while.
if ! insmod /llamux.ko pubkey=$pub haikus=0 uid_tokens_per_min=10 max_sessions=2; then
  bad "insmod with uid_tokens_per_min: $(lastlog)"; return
fi
chmod 0666 /proc/llamux/prompt
echo "n_ctx=$N_CTX max_tokens=8 temp=0 timeout=600" > /proc/llamux/config
rm -f /tmp/held
as alice /tmp/hold 4 8 > /tmp/held &
holder=$!
while [ ! -s /tmp/held ] && kill -0 $holder 2>/dev/null; do sleep 0.2; done
as bob /tmp/ask > /tmp/bob.txt 2>/tmp/b.err
[ -s /tmp/held ] && [ -s /tmp/bob.txt ] && pass "max_sessions=2: bob is served while alice holds 4 idle prompt files" \
  || bad "idle opens kept bob out: $(cat /tmp/b.err)"
wait $holder
as alice /tmp/ask > /tmp/alice.txt 2>/tmp/a.err
[ -s /tmp/alice.txt ] && pass "uid_tokens_per_min=10: alice's first request is served" || bad "alice's first request: $(cat /tmp/a.err)"
if as alice /tmp/ask > /dev/null 2>/tmp/a.err; then
  bad "alice's second request within the minute was served"
else
  grep -qi "quota" /tmp/a.err && pass "alice's second request fails with EDQUOT ($(cat /tmp/a.err))" || bad "alice's second request: $(cat /tmp/a.err)"
fi
as carol /tmp/ask > /tmp/carol.txt 2>/tmp/c.err
[ -s /tmp/carol.txt ] && pass "carol is served meanwhile" || bad "carol not served while alice is over quota: $(cat /tmp/c.err)"
grep -q " uid=1000 .*outcome=over_token_quota$" /proc/llamux/audit && pass "the refusal is audited" || bad "no over_token_quota audit line"
# Refusals cannot flood the audit ring: after 300 more requests of alice's (refused while she
# is over her quota; 300 records would push everything out of a single ring of 256), bob's and
# carol's served records are still there; at most 8 of her refusals a minute are recorded, the
# others counted in audit_suppressed.
as alice 'i=0; while [ $i -lt 300 ]; do /tmp/ask > /dev/null 2>&1; i=$((i + 1)); done'
cat /proc/llamux/audit > /tmp/audit2.txt
sha=$(printf '%s' "$PROMPT" | sha256sum | cut -d' ' -f1)
refusals=$(grep -c " uid=1000 .*outcome=over_token_quota$" /tmp/audit2.txt)
supp=$(grep '^audit_suppressed:' /proc/llamux/stats | cut -d' ' -f2)
if grep -q "^seq=[0-9]* time=[0-9]* uid=1001 pid=[0-9]* comm=cat client=- prompt_sha256=$sha tokens_in=[1-9][0-9]* tokens_out=[1-9][0-9]* outcome=completed$" /tmp/audit2.txt \
  && grep -q "^seq=[0-9]* .* uid=1002 .*prompt_sha256=$sha .*outcome=completed$" /tmp/audit2.txt \
  && [ "$refusals" -ge 1 ] && [ "$refusals" -le 16 ] && [ "${supp:-0}" -ge 250 ]; then
  pass "audit: 300 refused requests of alice's leave bob's and carol's served records; $refusals of her refusals recorded, $supp counted in audit_suppressed"
else
  tail -n 20 /tmp/audit2.txt
  bad "audit flooded by refusals: bob's or carol's record gone, or $refusals refusals recorded, audit_suppressed ${supp:-missing}"
fi
rmmod llamux || bad "rmmod"
