// The emulated network for end-to-end tests and benchmarks: network namespaces joined by veth
// links, a link that can turn into a black hole (a dead Wi-Fi: packets vanish, no RST, no
// link-down event), an OpenSSH sshd inside a namespace, and a delay line at the IP layer,
// because this kernel has no sch_netem (NFQUEUE, tests/tools/nfq_delay.cc): one TCP
// connection spans the whole round trip, as on a real long path.
//
//   auto net = LaptopServer::Create();               // needs root; skip the test if not ok
//   ServerSshd sshd;  sshd.Start(net->server, net->server_ip);
//   net->laptop.Run({"ssh", "-F", sshd.config_path(), "testhost", "true"});
//   net->link.Blackhole(true);                       // the link goes silent
//
// Rules it keeps (DESIGN.md, "Test bed"): addresses only inside namespaces the test made
// (10.233.0.0/16 on veth pairs that never appear in the machine's own namespace); every
// process is ended by its PID (namespaces: every PID `ip netns pids` lists); every wait and
// every command has a timeout, so no destructor hangs. Namespaces are named tth-<pid>-<n>:
// one whose creating process is dead is a crashed run's leftover, and NetNs::Create() removes
// it first.
//
// Threads: call these objects from the test's main thread (processes they start die with it,
// PR_SET_PDEATHSIG), except where a comment says otherwise.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "e2e/testbed.h"

namespace tether::testing {

// ---------------------------------------------------------------------------------------
// Namespaces

// Removes namespaces named tth-<pid>-<n> whose creating process is gone (or is this process
// but did not make them: a previous process with the same PID): SIGTERM/SIGKILL by PID to
// every process still inside, then `ip netns del`. Returns the names removed. NetNs::Create()
// calls it; any thread.
std::vector<std::string> RemoveStaleNetNs();

// The names of every namespace `ip netns list` shows.
std::vector<std::string> ListNetNs();

// `ip netns exec NAME argv...`: argv run inside namespace NAME. ip execs it in place (no fork),
// so a spawned PID is the command's own; the environment passes through unchanged.
std::vector<std::string> InNetNs(const std::string& ns_name, const std::vector<std::string>& argv);

// A blocking IPv4 TCP connection (TCP_NODELAY) from the calling thread's namespace to
// ip:port, or why not; bounded by `timeout` (a black-holed SYN times out). Refuses any
// address outside 127/8 from the machine's own namespace, where it would leave the machine.
// Any thread.
Result<UniqueFd> ConnectTcpTo(const std::string& ip, uint16_t port,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

// One network namespace "tth-<pid>-<n>" with lo up and TCP buffer maximums raised
// (net.ipv4.tcp_rmem / tcp_wmem = "4096 <default> 64 MiB"; net.core.[rw]mem_max too where the
// kernel lets a child namespace write them: on this one they are read-only, see
// core_buffers_raised()). Move-only; the destructor ends every process inside by PID
// (bounded) and deletes the namespace.
class NetNs {
 public:
  // Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); the error says why not.
  static Result<NetNs> Create();

  NetNs() = default;
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;
  NetNs(NetNs&& other) noexcept;
  NetNs& operator=(NetNs&& other) noexcept;

  const std::string& name() const { return name_; }
  bool valid() const { return !name_.empty(); }
  // False if net.core.rmem_max / wmem_max stayed at the machine's values (4 MiB here): then
  // an explicit SO_RCVBUF/SO_SNDBUF is capped there (root may use SO_*BUFFORCE), while
  // kernel autotuning still grows buffers up to the raised tcp_rmem/tcp_wmem maximums.
  bool core_buffers_raised() const { return core_buffers_raised_; }

  // The /etc/hosts of processes started in the namespace from now on (`ip netns exec`
  // binds /etc/netns/NAME/hosts over it): localhost, then `names` ("10.0.0.1 some.name").
  // What RunIn's threads resolve is the machine's own /etc/hosts. Removed with the namespace.
  Status SetHosts(const std::vector<std::string>& names) const;
  // InNetNs(name(), argv).
  std::vector<std::string> Wrap(const std::vector<std::string>& argv) const;
  // RunCommand inside the namespace. Any thread.
  CommandResult Run(const std::vector<std::string>& argv, const Env& extra_env = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(30),
                    std::string_view stdin_data = {}) const;
  // SpawnProcess inside the namespace (stdout and stderr appended to `log_path`).
  Result<Child> Spawn(const std::vector<std::string>& argv, const std::string& log_path = {},
                      const Env& extra_env = {}) const;
  // `tether args...` inside the namespace with TETHER_STATE_DIR=state_dir, as RunTether.
  // A daemon it starts stays in the namespace; StopAllTethers(state_dir) ends it by PID.
  CommandResult RunTether(const std::string& state_dir, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          const Env& extra_env = {}) const;

  // Runs `fn` on a short-lived thread that entered this namespace, and waits for it: sockets
  // it creates stay in the namespace for their whole life, so the test bed's in-process
  // servers (EchoServer, SinkServer, ... on 127.0.0.1) and clients (ConnectTcp, SendToSink,
  // ...) work inside when built or called in `fn`. Do not SpawnProcess from `fn`: the child
  // would die with the thread. Any thread.
  Status RunIn(const std::function<void()>& fn) const;
  // Constructs a Server (EchoServer, SinkServer, ...) listening inside the namespace.
  template <typename Server, typename... Args>
  Result<std::unique_ptr<Server>> MakeServer(Args&&... args) const {
    std::unique_ptr<Server> server;
    Status s = RunIn([&] { server = std::make_unique<Server>(std::forward<Args>(args)...); });
    if (!s.ok()) return s.take_error();
    if (!server->status().ok()) return server->status().error();
    return server;
  }
  // ConnectTcpTo from inside the namespace.
  Result<UniqueFd> ConnectTcp(const std::string& ip, uint16_t port,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  // PIDs of the processes inside, from `ip netns pids`.
  std::vector<pid_t> Pids() const;
  // SIGTERM, a bounded wait, SIGKILL to every process inside, by PID, in rounds (a process
  // may fork meanwhile). Returns how many it signalled.
  size_t KillAll(std::chrono::milliseconds grace = std::chrono::seconds(3));
  // KillAll, then deletes the namespace. Idempotent; the destructor calls it.
  void Destroy();

 private:
  explicit NetNs(std::string name) : name_(std::move(name)) {}

  std::string name_;
  bool core_buffers_raised_ = false;
};

// A listening IPv4 TCP socket on ip:port inside `ns` (SO_REUSEADDR, backlog 16), or why not.
// Any thread.
Result<UniqueFd> ListenTcpIn(const NetNs& ns, const std::string& ip, uint16_t port);

// Accepts one connection on `listen_fd` within `timeout` (TCP_NODELAY, as ConnectTcpTo's
// end has), or why not. Any thread.
Result<UniqueFd> AcceptTcp(int listen_fd, std::chrono::milliseconds timeout);

// A veth pair between two namespaces, 10.233.X.Y/30 on each end (a subnet no other Link of
// this process uses), both ends up. Names "tv<n>a" / "tv<n>b" exist only inside the two
// namespaces. Move-only; the destructor deletes the pair (it also dies with a namespace).
class Link {
 public:
  static Result<Link> Create(const NetNs& a, const NetNs& b);

  Link() = default;
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  Link(Link&& other) noexcept;
  Link& operator=(Link&& other) noexcept;

  const std::string& a_ip() const { return a_ip_; }
  const std::string& b_ip() const { return b_ip_; }
  const std::string& a_ifname() const { return a_if_; }
  const std::string& b_ifname() const { return b_if_; }

  // on: every IPv4 packet arriving over the link is dropped, in both namespaces (iptables
  // filter INPUT and FORWARD -i <veth> -j DROP). The sender's kernel sees a normal
  // transmission (a DROP in OUTPUT would fail it locally instead), no RST or ICMP comes back,
  // the link stays up: established TCP connections just stop hearing anything, as over a
  // dead Wi-Fi. off: the rules go and retransmissions get through again. Idempotent.
  // Needs iptables.
  Status Blackhole(bool on);
  bool blackholed() const { return blackholed_; }

 private:
  Status SetDropRules(const std::string& ns, const std::string& ifname, bool on);

  std::string a_ns_, b_ns_;
  std::string a_if_, b_if_;
  std::string a_ip_, b_ip_;
  bool blackholed_ = false;
};

// ---------------------------------------------------------------------------------------
// The IP-layer delay line

// The nfq_delay binary (the NFQ_DELAY_BIN compile definition; "" if it was not built, e.g.
// without libnetfilter-queue-dev).
const char* NfqDelayBinary();

// Delays every IPv4 packet that arrives in one namespace over one interface: an iptables rule
// (raw PREROUTING -i IFNAME -j NFQUEUE --queue-num Q) hands them to an nfq_delay process
// (tests/tools/nfq_delay.cc) in that namespace, which lets each go on `delay` later. TCP is
// NOT ended anywhere: connections across the link are one end-to-end TCP connection whose
// handshake, RTT estimate, windows and congestion control see the delay, as over a long path.
// One line per direction; a line on each end of a link makes RTT = 2 * delay. Queue numbers
// are per namespace. Packets a full queue cannot hold are dropped (nfq_delay counts them).
//
// Why on arrival and not in the sender's OUTPUT: a packet held there still belongs to the
// sending socket, and TCP Small Queues lets a socket have only ~2 packets (or ~1 ms at its
// pacing rate) below it at a time, so a held packet throttles the sender to a few packets per
// delay (measured: 0.5 Mbit/s at 100 ms RTT). A packet that crossed the veth is no socket's.
// Not thread-safe.
class NfqDelayLine {
 public:
  NfqDelayLine() = default;
  ~NfqDelayLine() { Stop(); }
  NfqDelayLine(const NfqDelayLine&) = delete;
  NfqDelayLine& operator=(const NfqDelayLine&) = delete;

  // Starts nfq_delay in `ns` and, once it has bound the queue (<= 10 s), adds the rule for
  // packets arriving over `ifname`.
  // `ns` must outlive this object (destroy this first).
  Status Start(const NetNs& ns, const std::string& ifname, std::chrono::milliseconds delay,
               uint16_t queue = 0);
  // Removes the rule, then SIGTERM by PID (nfq_delay lets the packets it holds go), bounded
  // wait, SIGKILL. Idempotent.
  void Stop();
  bool running() { return child_.valid() && child_.Running(); }

  pid_t pid() const { return child_.pid(); }
  std::chrono::milliseconds delay() const { return delay_; }
  std::string log_path() const;
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  std::string RuleSpec() const;

  std::unique_ptr<TempDir> dir_;
  std::string ns_;
  std::string ifname_;
  uint16_t queue_ = 0;
  std::chrono::milliseconds delay_{0};
  bool rule_added_ = false;
  Child child_;
};

// Two hosts: `laptop` (runs tether) and `server` (runs sshd), one link between them.
// Destruction (reverse order): the delay lines, the link, then each namespace with everything
// in it.
struct LaptopServer {
  NetNs laptop;
  NetNs server;
  Link link;
  std::string laptop_ip;  // link.a_ip()
  std::string server_ip;  // link.b_ip()
  // Set by AddIpDelay: the line on what the laptop sends (it runs in the server namespace,
  // where those packets arrive) and on what the server sends (in the laptop namespace).
  std::unique_ptr<NfqDelayLine> to_server_delay;
  std::unique_ptr<NfqDelayLine> to_laptop_delay;

  // Builds it, after RemoveStaleNetNs(); an error if the kernel refuses (not root, no veth)
  // or iptables is missing, so a test can GTEST_SKIP() << error.ToString().
  static Result<std::unique_ptr<LaptopServer>> Create();

  // Delays the link at the IP layer (NfqDelayLine): `laptop_to_server`
  // on what the laptop sends, `server_to_laptop` on what the server sends (0: that direction
  // stays undelayed); RTT = their sum. Call once.
  Status AddIpDelay(std::chrono::milliseconds laptop_to_server,
                    std::chrono::milliseconds server_to_laptop);
};

// ---------------------------------------------------------------------------------------
// An OpenSSH sshd inside a namespace

struct ServerSshdOptions {
  // As SshdOptions::extra_config: a line replaces the bed's line with the same keyword, others
  // are added, from "Match" on verbatim.
  std::vector<std::string> extra_config;
  // A port of the namespace's own: 22 is free there.
  uint16_t port = 22;
  // Also listen on 127.0.0.1 inside the namespace (for what runs in the server namespace).
  bool listen_on_loopback = true;
};

// `SshdBinary() -D -e -f sshd_config` inside a namespace on ip:port (and 127.0.0.1:port),
// with its own keys and configs in a TempDir laid out as Sshd's:
//   host_ed25519[.pub], id_ed25519[.pub] (authorized), wrong_ed25519[.pub] (not authorized),
//   authorized_keys, sshd_config, sshd.log, known_hosts ("IP <host key>"; AddKnownHost adds
//   more names), ssh_config: Host testhost -> IP:port as the current user with id_ed25519,
//   BatchMode, strict host key checking against known_hosts.
// Its PIDs are ordinary PIDs: sessions are the listener's descendants. Not thread-safe.
class ServerSshd {
 public:
  ServerSshd() = default;
  ~ServerSshd();
  ServerSshd(const ServerSshd&) = delete;
  ServerSshd& operator=(const ServerSshd&) = delete;

  // Creates keys and configs and starts sshd in `ns`, listening on `ip`; returns once it
  // listens (<= 10 s). `ns` must outlive this object's processes (destroy this first).
  Status Start(const NetNs& ns, const std::string& ip, const ServerSshdOptions& options = {});
  // Stop() then start again with the same keys and config: a server reboot.
  Status Restart();
  // Ends the sessions, then the listener: SIGTERM, bounded wait, SIGKILL, by PID. Idempotent.
  void Stop();
  // SIGKILL to the listener and every session at once: a crash (no goodbye on any socket
  // beyond what the kernel sends for a closed one).
  void Kill();
  // Ends only the listener (`systemctl restart ssh` with KillMode=process): sessions live on,
  // new connections are refused until Restart().
  void StopListener();
  // Ends the per-connection processes, keeps the listener.
  void DropConnections();
  bool running();

  const std::string& ip() const { return ip_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return listener_.pid(); }
  const std::string& user() const { return user_; }
  const std::string& host_pubkey_line() const { return host_pubkey_; }
  const std::string& dir() const;
  std::string config_path() const;  // the client ssh_config
  std::string sshd_config_path() const;
  std::string known_hosts_path() const;
  std::string user_key_path() const;
  std::string wrong_key_path() const;
  std::string log_path() const;
  std::string LogTail(size_t max_bytes = 4000) const;

  // Adds a known_hosts line for host:port ("host" for 22, "[host]:port" otherwise), such as a
  // second address that clients connect to instead.
  Status AddKnownHost(const std::string& host, uint16_t port);
  // Writes a client ssh_config like config_path()'s, changed by `options` (e.g. overrides
  // {"Port", "2222"} to go through a relay).
  Status WriteClientConfig(const std::string& path, const ClientConfigOptions& options = {}) const;

 private:
  Status Launch();
  void KillSessions(int signal_first);

  std::unique_ptr<TempDir> dir_;
  std::string ns_;
  std::string ip_;
  uint16_t port_ = 0;
  bool loopback_ = true;
  std::string user_;
  std::string host_pubkey_;
  Child listener_;
  // Sessions of a listener that StopListener() ended: (PID, start time), so that a reused
  // PID is never signalled.
  std::vector<std::pair<pid_t, uint64_t>> orphans_;
};


}  // namespace tether::testing
