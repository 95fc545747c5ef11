#!/bin/bash
#
# compat-ssh.sh: OpenSSH, unchanged, through the library, both ends
# shimmed, over two emulated paths.  sshd runs in the foreground (-D) with
# its own configuration and host key in a temporary directory, and a key
# pair for root.  sshd forks per connection and re-executes itself for
# each (its default), so the accepted connection crosses fork and exec.
# SSH is a protocol in which the server speaks first.
#   - ssh runs a command whose output is compared, and one that reads 5 MiB
#     from ssh's standard input and prints its sha256, compared;
#   - scp copies a 50 MiB random file up and back down; both checksums
#     must match;
#   - every stream of the ssh command starts with a record (MPTCP), and a
#     subflow takes the second path during scp.
#
# Usage: compat-ssh.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-ssh "$@"
require_pkg /usr/sbin/sshd openssh-server
require_pkg ssh openssh-client
require_pkg scp openssh-client
require_pkg tcpdump tcpdump

PORT=2222
D=$IT_TMP/ssh
mkdir -p "$D" /run/sshd
ssh-keygen -q -t ed25519 -N "" -f "$D/host_key" || fail "ssh-keygen failed"
ssh-keygen -q -t ed25519 -N "" -f "$D/id" || fail "ssh-keygen failed"
cp "$D/id.pub" "$D/authorized_keys"
cat >"$D/sshd_config" <<CONF
Port $PORT
ListenAddress $B4
HostKey $D/host_key
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF

start_server sshd shim "$NS_B" "$PORT" /usr/sbin/sshd -D -e \
	-f "$D/sshd_config"

SSHOPTS=(-F /dev/null -i "$D/id" -o BatchMode=yes
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR)

# A command with known output.
heads_start ssh "$PORT"
run_shim "$NS_A" timeout 30 ssh "${SSHOPTS[@]}" -p "$PORT" "root@$B4" \
	'echo hello from; cat '"$D/id.pub"'; seq 1 20000 | sha256sum' \
	>"$IT_TMP/cmd.out" 2>"$IT_TMP/cmd.err" ||
	check_fail "ssh exited with $?: $(excerpt "$IT_TMP/cmd.err")"
compat_framed ssh "$PORT"
{ echo hello from; cat "$D/id.pub"; seq 1 20000 | sha256sum; } \
	>"$IT_TMP/cmd.want"
if cmp -s "$IT_TMP/cmd.want" "$IT_TMP/cmd.out"; then
	say "ok - ssh: a command's output matches"
else
	check_fail "ssh: output differs: $(excerpt "$IT_TMP/cmd.out")"
fi

# 5 MiB up through ssh's standard input.
make_random_file "$IT_TMP/five" 5
run_shim "$NS_A" timeout 30 ssh "${SSHOPTS[@]}" -p "$PORT" "root@$B4" \
	sha256sum <"$IT_TMP/five" >"$IT_TMP/five.out" 2>"$IT_TMP/five.err" ||
	check_fail "ssh (stdin) exited with $?: $(excerpt "$IT_TMP/five.err")"
if [ "$(cut -d' ' -f1 "$IT_TMP/five.out")" = "$(sha256_of "$IT_TMP/five")" ]
then
	say "ok - ssh: 5 MiB of standard input arrived intact"
else
	check_fail "ssh (stdin): got '$(excerpt "$IT_TMP/five.out")'"
fi

# scp, 50 MiB up and back.
make_random_file "$IT_TMP/big" 50
compat_paths_start scp
start=$(now_ms)
run_shim "$NS_A" timeout 60 scp -q "${SSHOPTS[@]}" -P "$PORT" \
	"$IT_TMP/big" "root@$B4:$D/big.up" 2>"$IT_TMP/scp-up.err" ||
	check_fail "scp up exited with $?: $(excerpt "$IT_TMP/scp-up.err")"
up=$(seconds_since "$start")
start=$(now_ms)
run_shim "$NS_A" timeout 60 scp -q "${SSHOPTS[@]}" -P "$PORT" \
	"root@$B4:$D/big.up" "$IT_TMP/big.down" 2>"$IT_TMP/scp-down.err" ||
	check_fail "scp down exited with $?: $(excerpt "$IT_TMP/scp-down.err")"
down=$(seconds_since "$start")
compat_paths_stop scp
same_sha256 "$IT_TMP/big" "$D/big.up" ||
	check_fail "scp up: $(describe_diff "$IT_TMP/big" "$D/big.up")"
same_sha256 "$IT_TMP/big" "$IT_TMP/big.down" ||
	check_fail "scp down: $(describe_diff "$IT_TMP/big" "$IT_TMP/big.down")"
[ "$IT_FAILED" = 0 ] &&
	say "ok - scp: 50 MiB up (${up}s) and down (${down}s), sha256 matches"
it_finish
