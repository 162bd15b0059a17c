// The end-to-end test bed: a throwaway OpenSSH sshd on a free loopback port, in-process TCP
// servers to forward to, bounded process helpers, and a way to run the real tether binary.
//
// Rules it keeps (DESIGN.md, "Test bed"): everything listens on 127.0.0.1 only; every
// process it starts is ended by its PID; every wait is bounded in count and time; nothing
// touches the machine's own sshd or ~/.ssh.
//
// Threads: unless a comment says otherwise, call an object from one test thread. The TCP
// servers run their own threads and stop them (bounded) in their destructors.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::testing {

// Extra environment variables, set on top of the test process's own environment.
using Env = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------------------
// Files and ports

// A fresh directory /tmp/tether-e2e-XXXXXX (mode 0700), removed with everything in it on
// destruction. Aborts the test binary if /tmp is unusable: nothing else could work then.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  const std::string& path() const { return path_; }
  // Forgets the directory without removing it.
  void Release() { path_.clear(); }
  // path() + "/" + name.
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

// The HOME of every process this test binary starts: a private directory made before
// main() and removed at exit. The binary also unsets what of the runner's environment
// would leak in (SSH_AUTH_SOCK, TETHER_CONFIG, XDG_RUNTIME_DIR, proxy variables, ...) and
// points XDG_CONFIG_HOME, XDG_STATE_HOME and XDG_CACHE_HOME inside it. A test that wants
// one of them sets it on purpose, in the command's extra environment.
const std::string& TestHome();

// A 127.0.0.1 TCP port that was free a moment ago, from below the ephemeral range and from
// a stretch of its own per process (tests run side by side); 0 if none. Another process
// may still take it before you bind it: use it at once.
uint16_t FreeTcpPort();

// True if something accepts a TCP connection on 127.0.0.1:port within `timeout`.
bool PortAccepts(uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

Status WriteFile(const std::string& path, std::string_view content, int mode = 0600);
Result<std::string> ReadFile(const std::string& path);
// The file's contents, or "" if it cannot be read (for logs a test may look at first).
std::string ReadFileOrEmpty(const std::string& path);
// For a failed test's teardown: the last `bytes` of the daemon's log (STATE/HOST.log) on
// stderr, when there is one.
void PrintDaemonLogTail(const std::string& state_dir, size_t bytes = 8000,
                        const std::string& host = "testhost");
// Milliseconds since `start`.
long long MsSince(std::chrono::steady_clock::time_point start);
// How many times `needle` occurs in `text` (not overlapping), e.g. sshd.log's logins.
size_t CountOccurrences(std::string_view text, std::string_view needle);

// Polls `condition` every `interval` until it is true or `timeout` passes; returns its last
// value. The loop is bounded by both (at most timeout / interval + 1 calls).
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// ---------------------------------------------------------------------------------------
// Processes

// True if `pid` exists and is not a zombie (PID 1 here does not always reap orphans, so a
// dead daemon can linger as a zombie; it counts as dead).
bool ProcessAlive(pid_t pid);

// The PIDs of every live descendant of `pid` (children, grandchildren, ...), from /proc.
std::vector<pid_t> ProcessDescendants(pid_t pid);

// CPU time `pid` has used so far, user plus system, all its threads (utime + stime of
// /proc/PID/stat), in seconds; an error if /proc cannot be read or parsed, so that a
// bound on it never passes for want of a figure.
Result<double> ProcessCpuSeconds(pid_t pid);
// How many times the threads of `pid` were scheduled onto a CPU so far (the sum of the
// timeslice counts of /proc/PID/task/*/schedstat): its wake-ups, near enough.
Result<uint64_t> ProcessRuns(pid_t pid);
// A size field of /proc/PID/status ("VmRSS", "VmHWM"), in bytes; an error if unreadable.
Result<uint64_t> ProcessMemoryBytes(pid_t pid, std::string_view field);
// How many descriptors `pid` has open (/proc/PID/fd); an error if unreadable.
Result<size_t> OpenDescriptorCount(pid_t pid);

// Sends SIGTERM to `pid`, waits up to `grace` for it to die, then SIGKILL and waits up to
// 5 s more. For processes that are not our children (daemons); by PID only. True if dead.
bool TerminatePid(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds(5));

struct CommandResult {
  // Exit status; 128 + signal number if a signal ended it; 127 if it could not be started
  // (err then says why); -1 if it could not even be forked.
  int exit_code = -1;
  std::string out;
  std::string err;
  // The timeout passed and the process group was killed.
  bool timed_out = false;
  // The process exited but something it started (a daemon that did not redirect its stdio)
  // still held stdout or stderr open 1 s later. A shell's `$(tether up ...)` would hang.
  bool pipes_left_open = false;

  bool ok() const { return exit_code == 0 && !timed_out; }
  // "exit 3 (timed out)\nstdout: ...\nstderr: ..." for assertion messages.
  std::string Describe() const;
};

// Runs argv (argv[0] searched in PATH) with stdin from `stdin_data` (empty: /dev/null),
// captures stdout and stderr, and never hangs: at `timeout` it SIGKILLs the process group
// it created for the command. Safe to call from several threads at once.
CommandResult RunCommand(const std::vector<std::string>& argv, const Env& extra_env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(30),
                         std::string_view stdin_data = {});

// A process we started and own. Move-only. The destructor SIGKILLs it by PID and reaps it if
// it still runs. Not thread-safe.
class Child {
 public:
  Child() = default;
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool valid() const { return pid_ > 0; }
  // Reaps it if it has exited.
  bool Running();
  // Exit status as in CommandResult::exit_code, once reaped.
  std::optional<int> exit_code() const { return exit_code_; }
  // Waits up to `timeout` for it to exit; its exit status, or nullopt if it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Signal(int sig);
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status (-1 if unknown).
  int Terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL and reap; returns the exit status (-1 if unknown).
  int Kill();

 private:
  void Reset();

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Starts argv in the background, stdin from /dev/null, stdout and stderr appended to
// `log_path` (empty: /dev/null), in its own process group. With `die_with_parent_thread`
// the kernel SIGKILLs it if the calling thread dies first (PR_SET_PDEATHSIG), so a crashed
// test leaves no server behind; then call it from a thread that outlives the child, such as
// the test's main thread, not from a short-lived helper thread.
Result<Child> SpawnProcess(const std::vector<std::string>& argv, const Env& extra_env = {},
                           const std::string& log_path = {}, bool die_with_parent_thread = true);

// ---------------------------------------------------------------------------------------
// A throwaway OpenSSH sshd

// (g++ 12 with -Wextra warns on designated initializers that skip a member: set the fields
// one by one.)
struct SshdOptions {
  // Lines for sshd_config. sshd keeps the *first* value of a keyword, so a line whose
  // keyword the test bed already sets replaces the test bed's line (e.g.
  // "AllowTcpForwarding no"); other lines are added; from the first "Match" line on, lines
  // go verbatim to the end of the file.
  std::vector<std::string> extra_config;
  // 0: a free port.
  uint16_t port = 0;
  // The program to start, by an absolute path; empty: SshdBinary(). sshd names its PAM
  // service after the name it was started as, so a link with a name of the test's own
  // gets a PAM configuration of its own.
  std::string binary;
};

// Overrides for a client ssh_config written by Sshd::WriteClientConfig.
struct ClientConfigOptions {
  // The Host line's patterns.
  std::string host = "testhost";
  // Keyword -> value, replacing the test bed's value (keywords compare case-insensitively);
  // an empty value drops the keyword; new keywords are added.
  std::map<std::string, std::string> overrides;
  // Lines added at the end of the Host block, verbatim (e.g. "LocalForward 9000 ...").
  std::vector<std::string> extra_lines;
};

// The sshd binary the tests run: $TETHER_TEST_SSHD when set (OpenSSH 10.0 from
// scripts/openssh10.sh, say), else Debian's /usr/sbin/sshd. Read once.
const std::string& SshdBinary();
// Its version as `sshd -V` names it ("OpenSSH_10.0p2"), or why not.
Result<std::string> SshdVersion();
// OpenSSH's major * 100 + minor for the sshd at `binary` (804 for "OpenSSH_8.4p1"), 0 if
// `binary -V` does not say. Asked once per path. Any thread.
int SshdVersionNumber(const std::string& binary);
// `config` (an sshd_config the bed wrote) made to mean on `binary`'s version what it means
// on 9.x. Before 8.7 keyboard-interactive follows ChallengeResponseAuthentication (default
// yes) and a KbdInteractiveAuthentication line alone changes nothing, so each one outside
// a Match block gets a ChallengeResponseAuthentication line of the same value before it.
std::string AdaptSshdConfig(const std::string& config, const std::string& binary);
// The Debian 11 root that SshdBinary() runs its sshd chrooted in, when it is the wrapper
// scripts/debian11.sh made (ROOT/.tether/sshd); "" for an sshd of the host's. Commands
// over ssh then run the root's programs and see its /etc and home directories (ROOT +
// path from here); /tmp, /dev and /proc are the host's, so the bed's paths hold inside.
const std::string& SshdRoot();

// One OpenSSH sshd on 127.0.0.1:<free port>, with its own keys and config in a TempDir:
//   host_ed25519[.pub]     host key            known_hosts        [127.0.0.1]:PORT <host key>
//   id_ed25519[.pub]       authorized user key  wrong_ed25519[.pub] a key sshd does not accept
//   other_host_ed25519.pub another host key     known_hosts_mismatch  lists that one instead
//   authorized_keys, sshd_config, sshd.pid, sshd.log (sshd's stderr), ssh_config:
//     Host testhost -> this sshd as the current user with id_ed25519, BatchMode, strict
//     host key checking against known_hosts.
// Runs sshd as `SshdBinary() -D -e -f sshd_config`. Not thread-safe; start it from the
// test's main thread (see SpawnProcess).
class Sshd {
 public:
  Sshd() = default;
  ~Sshd();
  Sshd(const Sshd&) = delete;
  Sshd& operator=(const Sshd&) = delete;

  // Creates keys and configs and starts sshd; returns once the port accepts (<= 10 s).
  Status Start(const SshdOptions& options = {});
  // Stop() then start again with the same port, keys and config (a server reboot: every
  // connection drops).
  Status Restart();
  // Ends every session process this sshd forked and then the listener (SIGTERM, bounded
  // wait, SIGKILL), all by PID. Keeps the directory until destruction. Idempotent.
  void Stop();
  // Ends only the listener, like `systemctl restart ssh` with KillMode=process: established
  // connections live on, new ones are refused until Restart().
  void StopListener();
  // Ends the per-connection sshd processes but keeps the listener: every client's
  // connection drops at once and a reconnect succeeds.
  void DropConnections();
  bool running();

  uint16_t port() const { return port_; }
  pid_t pid() const { return listener_.pid(); }
  const std::string& dir() const;
  std::string config_path() const;  // the client ssh_config
  std::string sshd_config_path() const;
  std::string known_hosts_path() const;
  std::string mismatched_known_hosts_path() const;
  std::string user_key_path() const;
  std::string wrong_key_path() const;
  std::string log_path() const;
  const std::string& user() const { return user_; }
  // "ssh-ed25519 AAAA..." (no comment).
  const std::string& host_pubkey_line() const { return host_pubkey_; }
  // "SHA256:...", as `ssh-keygen -lf` prints it.
  const std::string& host_key_sha256_fingerprint() const { return host_fingerprint_; }
  // The last `max_bytes` of sshd.log, for assertion messages.
  std::string LogTail(size_t max_bytes = 4000) const;

  // Writes a client ssh_config like config_path()'s, changed by `options`.
  Status WriteClientConfig(const std::string& path, const ClientConfigOptions& options = {}) const;

 private:
  Status Launch();
  // SIGTERM then SIGKILL to every live descendant of the listener, by PID.
  void KillSessions();

  std::unique_ptr<TempDir> dir_;
  uint16_t port_ = 0;
  std::string binary_;
  std::string user_;
  std::string host_pubkey_;
  std::string host_fingerprint_;
  Child listener_;
  // Session processes of a listener that StopListener() ended: (PID, start time), so that a
  // reused PID is never signalled.
  std::vector<std::pair<pid_t, uint64_t>> orphans_;
};

// ---------------------------------------------------------------------------------------
// Hashing and the deterministic byte pattern

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n);
  // Lowercase hex; ends this hash (call once).
  std::string FinalHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);

// An endless deterministic byte stream from a seeded PRNG; the same seed gives the same
// bytes whatever the chunk sizes.
class PatternGenerator {
 public:
  explicit PatternGenerator(uint64_t seed);
  void Fill(char* out, size_t n);

 private:
  uint64_t state_;
  uint64_t word_ = 0;
  int left_ = 0;  // bytes of word_ not yet used
};

// The first n bytes of the pattern for `seed`, and their SHA-256 in hex.
std::string PatternBytes(uint64_t seed, size_t n);
std::string PatternSha256(uint64_t seed, uint64_t n);

// ---------------------------------------------------------------------------------------
// In-process TCP servers on 127.0.0.1

// One accepted connection, as a server handler sees it. Reads and writes block until done,
// the server stops, or `kIdleTimeout` passes without progress.
class ServerConnection {
 public:
  // A stuck peer cannot pin a handler thread longer than this; no test waits as long.
  static constexpr std::chrono::seconds kIdleTimeout{300};

  ServerConnection(int fd, int stop_fd) : fd_(fd), stop_fd_(stop_fd) {}
  int fd() const { return fd_; }
  // >0 bytes read, 0 at EOF, -1 on error, timeout or server stop.
  ssize_t Read(void* buf, size_t n);
  bool WriteAll(const void* data, size_t n);
  bool WriteAll(std::string_view data) { return WriteAll(data.data(), data.size()); }
  // Reads and discards until EOF (bounded by `timeout`): lets a server close without a RST
  // that could destroy data still in flight to the peer.
  void DrainUntilEof(std::chrono::milliseconds timeout);
  // Sleeps up to `d`; false if the server is stopping.
  bool SleepUnlessStopping(std::chrono::milliseconds d);
  bool stopping() const;

 private:
  // Waits for `events` on fd_; false on stop or timeout.
  bool WaitFor(short events);

  int fd_;
  int stop_fd_;
};

// Listens on 127.0.0.1:port (0: any free port) and runs `handler` on its own thread for
// every connection; the handler returns and the server closes the socket. The destructor
// stops accepting, wakes every handler (their reads and writes fail) and joins all threads.
// Handlers must only block inside ServerConnection calls so that the join is bounded.
class TcpServer {
 public:
  using Handler = std::function<void(ServerConnection&)>;

  explicit TcpServer(Handler handler, uint16_t port = 0);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // 0 if it could not listen; then status() says why.
  uint16_t port() const { return port_; }
  const Status& status() const { return status_; }
  // Connections accepted so far, and connections whose handler still runs. Any thread.
  uint64_t accepted() const { return accepted_.load(); }
  int active() const { return active_.load(); }
  // Stops now rather than at destruction (idempotent): closes the listener, so the port
  // refuses new connections, and ends every handler. Never from a handler (it joins them).
  void Stop();

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void AcceptLoop();
  void JoinFinished();

  Handler handler_;
  Status status_;
  uint16_t port_ = 0;
  UniqueFd listen_fd_;
  UniqueFd stop_read_;
  UniqueFd stop_write_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<int> active_{0};
  std::list<Worker> workers_;  // touched by the accept thread, then by Stop() after joining it
  std::thread accept_thread_;
  std::once_flag stop_once_;
};

// Echoes every byte back, half-close included: after the peer's EOF it sends what is left
// and then its own FIN. Copes with hundreds of concurrent connections (a thread each).
class EchoServer {
 public:
  explicit EchoServer(uint16_t port = 0);
  uint16_t port() const { return server_.port(); }
  const Status& status() const { return server_.status(); }
  uint64_t accepted() const { return server_.accepted(); }
  int active() const { return server_.active(); }
  void Stop() { server_.Stop(); }

 private:
  TcpServer server_;
};

// What a SinkServer saw on one connection.
struct SinkRecord {
  uint64_t bytes = 0;
  std::string sha256_hex;
};

// Reads every connection to EOF, then answers "ok <bytes> <sha256 hex>\n" and closes: a
// client that shuts down its sending side and reads the verdict tests half-close through a
// forward. SetPaused(true) stops reading (to build up backpressure) until SetPaused(false).
class SinkServer {
 public:
  explicit SinkServer(uint16_t port = 0);
  uint16_t port() const { return server_.port(); }
  const Status& status() const { return server_.status(); }
  uint64_t accepted() const { return server_.accepted(); }
  int active() const { return server_.active(); }
  // Records of finished connections, in the order they finished. Any thread.
  std::vector<SinkRecord> records() const;
  // Bytes read so far over all connections, finished or not. Any thread.
  uint64_t bytes_received() const { return bytes_received_.load(); }
  void SetPaused(bool paused) { paused_.store(paused); }
  bool WaitForRecords(size_t count, std::chrono::milliseconds timeout) const;
  void Stop() { server_.Stop(); }

 private:
  void Serve(ServerConnection& conn);

  mutable std::mutex mu_;
  std::vector<SinkRecord> records_;
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<bool> paused_{false};
  TcpServer server_;  // last: destroyed (and joined) first
};

// Sends `bytes` bytes of PatternGenerator(seed) to every connection, then FIN, waits for the
// peer's EOF (bounded) and closes.
class SourceServer {
 public:
  SourceServer(uint64_t bytes, uint64_t seed = 1, uint16_t port = 0);
  uint16_t port() const { return server_.port(); }
  const Status& status() const { return server_.status(); }
  uint64_t accepted() const { return server_.accepted(); }
  int active() const { return server_.active(); }
  uint64_t bytes() const { return bytes_; }
  // SHA-256 hex of what each connection receives (computed once, on first call).
  const std::string& expected_sha256();
  void Stop() { server_.Stop(); }

 private:
  void Serve(ServerConnection& conn);

  uint64_t bytes_;
  uint64_t seed_;
  std::string expected_;
  TcpServer server_;  // last: destroyed (and joined) first
};

// Answers every request (any method, any path) with 200, Content-Length and `body`, then
// closes the connection (Connection: close). Records each request line.
class HttpServer {
 public:
  explicit HttpServer(std::string body = "hello from the tether test bed\n", uint16_t port = 0);
  uint16_t port() const { return server_.port(); }
  const Status& status() const { return server_.status(); }
  uint64_t accepted() const { return server_.accepted(); }
  int active() const { return server_.active(); }
  const std::string& body() const { return body_; }
  uint64_t requests_served() const { return served_.load(); }
  // "GET /path HTTP/1.1" lines, in arrival order. Any thread.
  std::vector<std::string> request_lines() const;
  void Stop() { server_.Stop(); }

 private:
  void Serve(ServerConnection& conn);

  std::string body_;
  std::atomic<uint64_t> served_{0};
  mutable std::mutex mu_;
  std::vector<std::string> request_lines_;
  TcpServer server_;  // last: destroyed (and joined) first
};

// ---------------------------------------------------------------------------------------
// Clients (all bounded by their timeout; all on 127.0.0.1)

// A connected, blocking TCP socket to 127.0.0.1:port (TCP_NODELAY), or why not.
Result<UniqueFd> ConnectTcp(uint16_t port,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5));

Status SendAll(int fd, std::string_view data,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Reads until EOF; an error if the timeout passes first.
Result<std::string> ReceiveAll(int fd,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Reads until what arrived contains `delimiter`, or EOF. Returns everything read, which may
// go on past the delimiter (it reads in chunks).
Result<std::string> ReceiveUntil(int fd, std::string_view delimiter,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

struct TransferSummary {
  uint64_t bytes = 0;
  std::string sha256_hex;
};

// Sends `bytes` pattern bytes for `seed`; returns what it sent (count and hash). Does not
// shut down the socket.
Result<TransferSummary> SendAllAndHash(
    int fd, uint64_t bytes, uint64_t seed,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Reads until EOF; the count and hash of what arrived.
Result<TransferSummary> ReceiveAllAndHash(
    int fd, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Connects to a SinkServer (directly or through a forward), sends `bytes` pattern bytes for
// `seed`, shuts down the sending side and reads the "ok <bytes> <hex>" verdict. Returns what
// was sent; an error that names both counts and hashes if the sink saw something else.
Result<TransferSummary> SendToSink(uint16_t port, uint64_t bytes, uint64_t seed = 1,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Connects to a SourceServer (directly or through a forward) and reads it to EOF.
Result<TransferSummary> ReadFromSource(
    uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Connects, sends `data`, shuts down the sending side and reads until EOF: through an
// EchoServer the result equals `data`.
Result<std::string> EchoRoundTrip(uint16_t port, std::string_view data,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct HttpResponse {
  int status = 0;
  std::string headers;  // status line and headers, CRLFs included
  std::string body;
};
// One "GET path HTTP/1.1" with Connection: close, read to EOF.
Result<HttpResponse> HttpGet(uint16_t port, std::string_view path = "/",
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// ---------------------------------------------------------------------------------------
// The tether binary

// The tether binary under test: $TETHER_E2E_BIN if set (e.g. a sanitizer build's), else the
// TETHER_BIN compile definition.
const char* TetherBinary();

// git over ssh, as a user runs it: a bare repository at DIR/repo.git reached as
// testhost:DIR/repo.git, one commit pushed to it from DIR/work and cloned back to
// DIR/clone, ssh being `ssh_command` (GIT_SSH_COMMAND) with `extra_env`. The clone's
// README ("hello\n"), or what failed.
Result<std::string> GitPushAndClone(const std::string& dir, const std::string& ssh_command,
                                    const Env& extra_env = {});

// Runs `tether args...` with TETHER_STATE_DIR=state_dir (plus `extra_env`).
CommandResult RunTether(const std::string& state_dir, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30),
                        const Env& extra_env = {}, std::string_view stdin_data = {});

// For a test's teardown: `tether down --all` (bounded), then SIGTERM/SIGKILL by PID every
// daemon whose STATE/HOST.pid still names a live process. Returns the PIDs it had to kill.
std::vector<pid_t> StopAllTethers(const std::string& state_dir);

// A second account on this machine, the server of the test bed: the other users of a
// shared server. Made by the test (useradd, no home, no login shell) and removed by the
// destructor (userdel). Needs root, as the suite does.
class OtherAccount {
 public:
  OtherAccount();
  ~OtherAccount();
  OtherAccount(const OtherAccount&) = delete;
  OtherAccount& operator=(const OtherAccount&) = delete;

  bool ok() const { return uid_ != 0; }
  // Why it could not be made.
  const std::string& error() const { return error_; }
  uid_t uid() const { return uid_; }
  const std::string& name() const { return name_; }
  // argv to run as this account (setpriv: its uid and gid, no supplementary groups).
  std::vector<std::string> As(const std::vector<std::string>& argv) const;
  // argv of a listener as this account on 127.0.0.1 at each of `ports` that writes every
  // byte it receives (Python's repr) to its stdout: a squatter whose catch a test counts.
  std::vector<std::string> Catcher(const std::vector<uint16_t>& ports) const;
  // Runs argv as this account, as RunCommand does.
  CommandResult Run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  std::string name_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::string error_;
};

}  // namespace tether::testing
