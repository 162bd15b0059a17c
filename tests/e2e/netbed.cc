#include "e2e/netbed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#ifndef NFQ_DELAY_BIN
// Without it NfqDelayLine::Start() fails and says so.
#define NFQ_DELAY_BIN ""
#endif

namespace tether::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kNsPrefix = "tth-";
// Every `ip`, `iptables` and ssh-keygen call gets this long; they take milliseconds.
constexpr milliseconds kToolTimeout{10000};
// How long a process gets to die after SIGKILL.
constexpr milliseconds kKillWait{3000};
// Rounds of KillAll / KillSessions: a process may fork while its siblings are killed.
constexpr int kKillRounds = 3;
// TCP buffer maximums inside our namespaces. With the kernel's default 4 MiB send buffer one
// TCP stream stops near 285 Mbit/s at 100 ms (DESIGN.md); 64 MiB carries > 5 Gbit/s there.
constexpr const char* kTcpRmem = "4096 131072 67108864";
constexpr const char* kTcpWmem = "4096 16384 67108864";
constexpr const char* kCoreMemMax = "67108864";
constexpr milliseconds kStartTimeout{10000};
// Debian's sshd refuses to start as root without its privilege-separation directory.
constexpr const char* kPrivsepDir = "/run/sshd";

std::atomic<int> g_ns_counter{0};
std::atomic<int> g_link_counter{0};

// Namespaces this process created and has not deleted yet.
std::mutex g_live_mu;
std::set<std::string> g_live;

void MarkLive(const std::string& name, bool live) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  if (live) {
    g_live.insert(name);
  } else {
    g_live.erase(name);
  }
}

bool IsLive(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  return g_live.count(name) != 0;
}

std::string Trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Keyword(const std::string& line) {
  std::string t = Trim(line);
  if (t.empty() || t[0] == '#') return {};
  return Lower(t.substr(0, t.find_first_of(" \t=")));
}

Error CommandError(const std::string& step, const std::vector<std::string>& argv,
                   const CommandResult& r) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return MakeError(step, "`" + cmd + "` failed: " + r.Describe());
}

Status Tool(const std::string& step, const std::vector<std::string>& argv,
            std::string_view stdin_data = {}) {
  CommandResult r = RunCommand(argv, {}, kToolTimeout, stdin_data);
  if (!r.ok()) return CommandError(step, argv, r);
  return Status::Ok();
}

// Writes a /proc/sys file of the calling thread's network namespace.
Status WriteSysctl(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("sysctl", path, errno);
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n != static_cast<ssize_t>(value.size())) return ErrnoError("sysctl", path, errno);
  return Status::Ok();
}

Status RunInNetNs(const std::string& ns, const std::function<void()>& fn) {
  const std::string path = "/run/netns/" + ns;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("netns", "open " + path, errno);
  Status result;
  // setns(CLONE_NEWNET) moves only the calling thread: a fresh one, so the test's threads
  // stay where they are.
  std::thread t([&] {
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      result = ErrnoError("netns", "setns " + path, errno);
      return;
    }
    fn();
  });
  t.join();
  return result;
}

// Field 22 of /proc/PID/stat (start time in clock ticks): tells a reused PID apart; 0 if gone.
uint64_t StartTime(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return 0;
  size_t close = text->rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text->substr(close + 1));
  std::string f;
  for (int i = 0; i < 20 && in >> f; ++i) {
    if (i == 19) return std::strtoull(f.c_str(), nullptr, 10);
  }
  return 0;
}

bool AllDead(const std::vector<pid_t>& pids) {
  return std::none_of(pids.begin(), pids.end(), [](pid_t p) { return ProcessAlive(p); });
}

// `signal_first` to every PID, a bounded wait, SIGKILL to the survivors, a bounded wait.
void SignalPids(const std::vector<pid_t>& pids, int signal_first, milliseconds grace) {
  if (pids.empty()) return;
  for (pid_t p : pids) {
    if (p > 1 && p != ::getpid()) ::kill(p, signal_first);
  }
  if (WaitFor([&] { return AllDead(pids); }, signal_first == SIGKILL ? kKillWait : grace)) return;
  for (pid_t p : pids) {
    if (p > 1 && p != ::getpid() && ProcessAlive(p)) ::kill(p, SIGKILL);
  }
  WaitFor([&] { return AllDead(pids); }, kKillWait);
}

std::vector<pid_t> NetNsPids(const std::string& ns) {
  CommandResult r = RunCommand({"ip", "netns", "pids", ns}, {}, kToolTimeout);
  std::vector<pid_t> pids;
  std::istringstream in(r.out);
  long p = 0;
  while (in >> p) {
    if (p > 1 && p != ::getpid()) pids.push_back(static_cast<pid_t>(p));
  }
  return pids;
}

size_t KillNetNsProcesses(const std::string& ns, milliseconds grace) {
  std::set<pid_t> signalled;
  for (int round = 0; round < kKillRounds; ++round) {
    std::vector<pid_t> pids = NetNsPids(ns);
    pids.erase(std::remove_if(pids.begin(), pids.end(), [](pid_t p) { return !ProcessAlive(p); }),
               pids.end());
    if (pids.empty()) break;
    signalled.insert(pids.begin(), pids.end());
    SignalPids(pids, SIGTERM, grace);
  }
  return signalled.size();
}

// Where `ip netns exec` finds files to bind over /etc for the namespace's processes.
std::string NetNsEtcDir(const std::string& ns) { return "/etc/netns/" + ns; }

void DeleteNetNs(const std::string& ns) {
  KillNetNsProcesses(ns, milliseconds(3000));
  // Two tries: a delete racing a process that is still leaving can fail once.
  for (int i = 0; i < 2; ++i) {
    if (RunCommand({"ip", "netns", "del", ns}, {}, kToolTimeout).ok()) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  std::error_code ec;
  std::filesystem::remove_all(NetNsEtcDir(ns), ec);  // SetHosts' files, if any
}

// (pid, n) from "tth-<pid>-<n>", or nullopt for other names.
std::optional<pid_t> CreatorPid(const std::string& name) {
  if (name.rfind(kNsPrefix, 0) != 0) return std::nullopt;
  std::string rest = name.substr(std::strlen(kNsPrefix));
  size_t dash = rest.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 >= rest.size()) return std::nullopt;
  std::string pid = rest.substr(0, dash);
  std::string n = rest.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  if (!digits(pid) || !digits(n) || pid.size() > 9) return std::nullopt;
  return static_cast<pid_t>(std::strtol(pid.c_str(), nullptr, 10));
}

// True if the calling thread is in the process's original network namespace (the main
// thread's, which never leaves it: only RunIn's helper threads do).
bool InMachineNamespace() {
  struct stat mine {};
  struct stat main_thread {};
  if (::stat("/proc/thread-self/ns/net", &mine) != 0 ||
      ::stat("/proc/self/ns/net", &main_thread) != 0) {
    return true;  // cannot tell: assume the worst
  }
  return mine.st_ino == main_thread.st_ino && mine.st_dev == main_thread.st_dev;
}

std::string CurrentUser() {
  if (passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  const char* u = std::getenv("USER");
  return u ? u : "root";
}

std::string KnownHostsName(const std::string& host, uint16_t port) {
  return port == 22 ? host : "[" + host + "]:" + std::to_string(port);
}

std::string Tail(const std::string& path, size_t max_bytes) {
  auto text = ReadFile(path);
  if (!text.ok()) return "(no log: " + text.error().ToString() + ")";
  if (text->size() > max_bytes) return "..." + text->substr(text->size() - max_bytes);
  return *text;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Namespaces

std::vector<std::string> ListNetNs() {
  CommandResult r = RunCommand({"ip", "netns", "list"}, {}, kToolTimeout);
  std::vector<std::string> names;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {  // "NAME" or "NAME (id: N)"
    std::istringstream words(line);
    std::string name;
    if (words >> name) names.push_back(name);
  }
  return names;
}

std::vector<std::string> RemoveStaleNetNs() {
  std::vector<std::string> removed;
  if (::geteuid() != 0) return removed;
  for (const std::string& name : ListNetNs()) {
    auto pid = CreatorPid(name);
    if (!pid) continue;
    bool stale = *pid == ::getpid() ? !IsLive(name) : !ProcessAlive(*pid);
    if (!stale) continue;
    DeleteNetNs(name);
    removed.push_back(name);
  }
  return removed;
}

std::vector<std::string> InNetNs(const std::string& ns_name, const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"ip", "netns", "exec", ns_name};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Result<UniqueFd> ListenTcpIn(const NetNs& ns, const std::string& ip, uint16_t port) {
  Result<UniqueFd> out = MakeError("listen", "not run");
  Status s = ns.RunIn([&] {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 16) != 0) {
      out = ErrnoError("listen", ip + ":" + std::to_string(port), errno);
      return;
    }
    out = std::move(fd);
  });
  if (!s.ok()) return s.take_error();
  return out;
}

Result<UniqueFd> AcceptTcp(int listen_fd, milliseconds timeout) {
  pollfd p = {listen_fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
    return MakeError("accept", "nothing to accept");
  }
  UniqueFd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return ErrnoError("accept", "accept4", errno);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

Result<UniqueFd> ConnectTcpTo(const std::string& ip, uint16_t port, milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return MakeError("connect", "not an IPv4 address: " + ip);
  }
  const std::string where = ip + ":" + std::to_string(port);
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127 && InMachineNamespace()) {
    // The bed's addresses are not local here: the default route would carry the connection
    // off the machine (and on CI machines something out there may even accept it).
    return MakeError("connect", where + " from the machine's own namespace",
                     "connect from inside a NetNs (NetNs::ConnectTcp or RunIn)");
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoError("connect", "socket", errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return ErrnoError("connect", where, errno);
    auto deadline = Clock::now() + timeout;
    int r = 0;
    for (int i = 0; i < 1000; ++i) {  // EINTR retries, bounded by count and the deadline
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      pollfd p = {fd.get(), POLLOUT, 0};
      r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
      if (r >= 0 || errno != EINTR) break;
    }
    if (r == 0) return MakeError("connect", where + ": timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (r < 0 || err != 0) return ErrnoError("connect", where, r < 0 ? errno : err);
  }
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

Result<NetNs> NetNs::Create() {
  if (::geteuid() != 0) {
    return MakeError("netns", "network namespaces need root (ip netns add)",
                     "run the network tests as root");
  }
  RemoveStaleNetNs();
  std::string name = kNsPrefix + std::to_string(::getpid()) + "-" + std::to_string(g_ns_counter++);
  MarkLive(name, true);  // before it exists: RemoveStaleNetNs in another thread leaves it be
  std::vector<std::string> add = {"ip", "netns", "add", name};
  CommandResult r = RunCommand(add, {}, kToolTimeout);
  if (!r.ok()) {
    MarkLive(name, false);
    return CommandError("netns", add, r);
  }
  NetNs ns(name);  // from here on its destructor deletes it
  Status s = Tool("netns", {"ip", "-n", name, "link", "set", "lo", "up"});
  if (!s.ok()) return s.take_error();
  Status tcp;
  bool core = true;
  s = ns.RunIn([&] {
    tcp = WriteSysctl("/proc/sys/net/ipv4/tcp_rmem", kTcpRmem);
    if (tcp.ok()) tcp = WriteSysctl("/proc/sys/net/ipv4/tcp_wmem", kTcpWmem);
    // Read-only in a child namespace on some kernels (this one): best effort.
    core = WriteSysctl("/proc/sys/net/core/rmem_max", kCoreMemMax).ok() &&
           WriteSysctl("/proc/sys/net/core/wmem_max", kCoreMemMax).ok();
  });
  if (!s.ok()) return s.take_error();
  if (!tcp.ok()) return tcp.take_error();
  ns.core_buffers_raised_ = core;
  return ns;
}

NetNs::~NetNs() { Destroy(); }

NetNs::NetNs(NetNs&& other) noexcept
    : name_(std::exchange(other.name_, {})), core_buffers_raised_(other.core_buffers_raised_) {}

NetNs& NetNs::operator=(NetNs&& other) noexcept {
  if (this != &other) {
    Destroy();
    name_ = std::exchange(other.name_, {});
    core_buffers_raised_ = other.core_buffers_raised_;
  }
  return *this;
}

std::vector<std::string> NetNs::Wrap(const std::vector<std::string>& argv) const {
  return InNetNs(name_, argv);
}

CommandResult NetNs::Run(const std::vector<std::string>& argv, const Env& extra_env,
                         milliseconds timeout, std::string_view stdin_data) const {
  return RunCommand(Wrap(argv), extra_env, timeout, stdin_data);
}

Result<Child> NetNs::Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                           const Env& extra_env) const {
  return SpawnProcess(Wrap(argv), extra_env, log_path, /*die_with_parent_thread=*/true);
}

CommandResult NetNs::RunTether(const std::string& state_dir, const std::vector<std::string>& args,
                               milliseconds timeout, const Env& extra_env) const {
  std::vector<std::string> argv = {TetherBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Env env = extra_env;
  env["TETHER_STATE_DIR"] = state_dir;
  return Run(argv, env, timeout);
}

Status NetNs::RunIn(const std::function<void()>& fn) const {
  if (name_.empty()) return MakeError("netns", "RunIn on an empty NetNs");
  return RunInNetNs(name_, fn);
}

Result<UniqueFd> NetNs::ConnectTcp(const std::string& ip, uint16_t port,
                                   milliseconds timeout) const {
  Result<UniqueFd> fd = MakeError("connect", "not run");
  Status s = RunIn([&] { fd = ConnectTcpTo(ip, port, timeout); });
  if (!s.ok()) return s.take_error();
  return fd;
}

std::vector<pid_t> NetNs::Pids() const {
  if (name_.empty()) return {};
  return NetNsPids(name_);
}

size_t NetNs::KillAll(milliseconds grace) {
  if (name_.empty()) return 0;
  return KillNetNsProcesses(name_, grace);
}

Status NetNs::SetHosts(const std::vector<std::string>& names) const {
  if (name_.empty()) return MakeError("netns", "no namespace");
  std::error_code ec;
  std::filesystem::create_directories(NetNsEtcDir(name_), ec);
  if (ec) return MakeError("netns", NetNsEtcDir(name_) + ": " + ec.message());
  std::string hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";
  for (const auto& line : names) hosts += line + "\n";
  return WriteFile(NetNsEtcDir(name_) + "/hosts", hosts, 0644);
}

void NetNs::Destroy() {
  if (name_.empty()) return;
  DeleteNetNs(name_);
  MarkLive(name_, false);
  name_.clear();
}

// ---------------------------------------------------------------------------------------
// Link

Result<Link> Link::Create(const NetNs& a, const NetNs& b) {
  if (!a.valid() || !b.valid()) return MakeError("link", "a namespace is missing");
  const int n = g_link_counter++;
  // 10.233.X.Y/30: 64 subnets per X, 16384 links per process before any reuse.
  const std::string net =
      "10.233." + std::to_string((n / 64) % 256) + "." + std::to_string((n % 64) * 4);
  const std::string prefix = net.substr(0, net.rfind('.') + 1);
  const int base = (n % 64) * 4;
  Link link;
  link.a_ns_ = a.name();
  link.b_ns_ = b.name();
  link.a_if_ = "tv" + std::to_string(n) + "a";
  link.b_if_ = "tv" + std::to_string(n) + "b";
  link.a_ip_ = prefix + std::to_string(base + 1);
  link.b_ip_ = prefix + std::to_string(base + 2);
  // Both ends are created inside the namespaces: the names never exist in the machine's own.
  Status s = Tool("link", {"ip", "-n", a.name(), "link", "add", link.a_if_, "type", "veth", "peer",
                           "name", link.b_if_, "netns", b.name()});
  if (!s.ok()) {
    link.a_ns_.clear();  // nothing to delete
    return s.take_error();
  }
  for (const auto& [ns, ifname, ip] : {std::tuple{a.name(), link.a_if_, link.a_ip_},
                                       std::tuple{b.name(), link.b_if_, link.b_ip_}}) {
    s = Tool("link", {"ip", "-n", ns, "addr", "add", ip + "/30", "dev", ifname});
    if (s.ok()) s = Tool("link", {"ip", "-n", ns, "link", "set", ifname, "up"});
    if (!s.ok()) return s.take_error();
  }
  return link;
}

Link::~Link() {
  if (a_ns_.empty()) return;
  if (blackholed_) (void)Blackhole(false);
  // Deleting one end deletes the pair; fails harmlessly if the namespace went first.
  (void)RunCommand({"ip", "-n", a_ns_, "link", "del", a_if_}, {}, kToolTimeout);
}

Link::Link(Link&& other) noexcept
    : a_ns_(std::exchange(other.a_ns_, {})),
      b_ns_(std::exchange(other.b_ns_, {})),
      a_if_(std::move(other.a_if_)),
      b_if_(std::move(other.b_if_)),
      a_ip_(std::move(other.a_ip_)),
      b_ip_(std::move(other.b_ip_)),
      blackholed_(std::exchange(other.blackholed_, false)) {}

Link& Link::operator=(Link&& other) noexcept {
  if (this != &other) {
    Link old(std::move(*this));  // deleted at the end of this scope
    a_ns_ = std::exchange(other.a_ns_, {});
    b_ns_ = std::exchange(other.b_ns_, {});
    a_if_ = std::move(other.a_if_);
    b_if_ = std::move(other.b_if_);
    a_ip_ = std::move(other.a_ip_);
    b_ip_ = std::move(other.b_ip_);
    blackholed_ = std::exchange(other.blackholed_, false);
  }
  return *this;
}

Status Link::SetDropRules(const std::string& ns, const std::string& ifname, bool on) {
  // One iptables-restore per namespace: both chains change at once.
  const char* op = on ? "-I" : "-D";
  std::string rules = "*filter\n";
  rules += std::string(op) + " INPUT -i " + ifname + " -j DROP\n";
  rules += std::string(op) + " FORWARD -i " + ifname + " -j DROP\n";
  rules += "COMMIT\n";
  return Tool("blackhole", InNetNs(ns, {"iptables-restore", "--noflush"}), rules);
}

Status Link::Blackhole(bool on) {
  if (a_ns_.empty()) return MakeError("blackhole", "no link");
  if (on == blackholed_) return Status::Ok();
  Status s = SetDropRules(a_ns_, a_if_, on);
  if (!s.ok()) return s;
  s = SetDropRules(b_ns_, b_if_, on);
  if (!s.ok()) {
    (void)SetDropRules(a_ns_, a_if_, !on);  // back to a consistent state
    return s;
  }
  blackholed_ = on;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// LaptopServer

Result<std::unique_ptr<LaptopServer>> LaptopServer::Create() {
  auto net = std::make_unique<LaptopServer>();
  auto laptop = NetNs::Create();
  if (!laptop.ok()) return laptop.take_error();
  net->laptop = std::move(*laptop);
  auto server = NetNs::Create();
  if (!server.ok()) return server.take_error();
  net->server = std::move(*server);
  auto link = Link::Create(net->laptop, net->server);
  if (!link.ok()) return link.take_error();
  net->link = std::move(*link);
  net->laptop_ip = net->link.a_ip();
  net->server_ip = net->link.b_ip();
  CommandResult r = net->laptop.Run({"iptables", "-S", "INPUT"}, {}, kToolTimeout);
  if (!r.ok()) {
    return MakeError("netbed", "iptables does not work in a namespace: " + r.Describe(),
                     "apt-get install iptables");
  }
  return net;
}

Status LaptopServer::AddIpDelay(milliseconds laptop_to_server, milliseconds server_to_laptop) {
  if (to_server_delay || to_laptop_delay) return MakeError("netbed", "AddIpDelay() called twice");
  if (laptop_to_server.count() > 0) {
    to_server_delay = std::make_unique<NfqDelayLine>();
    Status s = to_server_delay->Start(server, link.b_ifname(), laptop_to_server);
    if (!s.ok()) return s;
  }
  if (server_to_laptop.count() > 0) {
    to_laptop_delay = std::make_unique<NfqDelayLine>();
    Status s = to_laptop_delay->Start(laptop, link.a_ifname(), server_to_laptop);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// NfqDelayLine

const char* NfqDelayBinary() { return NFQ_DELAY_BIN; }

std::string NfqDelayLine::log_path() const { return dir_ ? dir_->File("nfq_delay.log") : ""; }

std::string NfqDelayLine::LogTail(size_t max_bytes) const { return Tail(log_path(), max_bytes); }

std::string NfqDelayLine::RuleSpec() const {
  return "PREROUTING -i " + ifname_ + " -j NFQUEUE --queue-num " + std::to_string(queue_);
}

Status NfqDelayLine::Start(const NetNs& ns, const std::string& ifname, milliseconds delay,
                           uint16_t queue) {
  if (child_.valid()) return MakeError("nfq delay", "Start() called twice");
  if (!ns.valid()) return MakeError("nfq delay", "no namespace");
  const std::string bin = NfqDelayBinary();
  if (bin.empty() || ::access(bin.c_str(), X_OK) != 0) {
    return MakeError("nfq delay", "no nfq_delay binary at '" + bin + "'",
                     "apt-get install libnetfilter-queue-dev (scripts/setup.sh) and rebuild");
  }
  if (!dir_) dir_ = std::make_unique<TempDir>();
  ns_ = ns.name();
  ifname_ = ifname;
  queue_ = queue;
  delay_ = delay;
  const std::string log = log_path();
  auto before = ReadFile(log);
  const size_t log_offset = before.ok() ? before->size() : 0;
  auto child = ns.Spawn(
      {bin, "--queue", std::to_string(queue), "--delay-ms", std::to_string(delay.count())}, log);
  if (!child.ok()) return child.take_error();
  child_ = std::move(*child);
  bool ready = false;
  WaitFor(
      [&] {
        auto text = ReadFile(log);
        ready = text.ok() && text->find("nfq_delay: ready", log_offset) != std::string::npos;
        return ready || !child_.Running();
      },
      kStartTimeout);
  if (!ready) {
    child_.Kill();
    child_ = Child();
    return MakeError("nfq delay", "nfq_delay did not bind queue " + std::to_string(queue) + " in " +
                                      ns_ + ":\n" + LogTail());
  }
  // Only now: packets sent to a queue nobody has bound are dropped.
  Status s = Tool("nfq delay", InNetNs(ns_, {"iptables-restore", "--noflush"}),
                  "*raw\n-A " + RuleSpec() + "\nCOMMIT\n");
  if (!s.ok()) {
    Stop();
    return s;
  }
  rule_added_ = true;
  return Status::Ok();
}

void NfqDelayLine::Stop() {
  if (rule_added_) {
    // Fails harmlessly if the namespace went first.
    (void)Tool("nfq delay", InNetNs(ns_, {"iptables-restore", "--noflush"}),
               "*raw\n-D " + RuleSpec() + "\nCOMMIT\n");
    rule_added_ = false;
  }
  if (child_.valid()) child_.Terminate(milliseconds(3000));
  child_ = Child();
}

// ---------------------------------------------------------------------------------------
// ServerSshd

ServerSshd::~ServerSshd() { Stop(); }

const std::string& ServerSshd::dir() const {
  static const std::string kNone;
  return dir_ ? dir_->path() : kNone;
}
std::string ServerSshd::config_path() const { return dir() + "/ssh_config"; }
std::string ServerSshd::sshd_config_path() const { return dir() + "/sshd_config"; }
std::string ServerSshd::known_hosts_path() const { return dir() + "/known_hosts"; }
std::string ServerSshd::user_key_path() const { return dir() + "/id_ed25519"; }
std::string ServerSshd::wrong_key_path() const { return dir() + "/wrong_ed25519"; }
std::string ServerSshd::log_path() const { return dir() + "/sshd.log"; }
std::string ServerSshd::LogTail(size_t max_bytes) const { return Tail(log_path(), max_bytes); }

Status ServerSshd::Start(const NetNs& ns, const std::string& ip, const ServerSshdOptions& options) {
  if (dir_) return MakeError("sshd", "Start() called twice", "use Restart()");
  if (!ns.valid()) return MakeError("sshd", "no namespace");
  dir_ = std::make_unique<TempDir>();
  ns_ = ns.name();
  ip_ = ip;
  port_ = options.port;
  loopback_ = options.listen_on_loopback;
  user_ = CurrentUser();
  if (::geteuid() == 0 && ::mkdir(kPrivsepDir, 0755) != 0 && errno != EEXIST) {
    return ErrnoError("sshd", std::string("mkdir ") + kPrivsepDir, errno);
  }
  const std::string d = dir();
  for (const auto& [file, comment] : std::vector<std::pair<std::string, std::string>>{
           {"host_ed25519", "tether-netbed-host"},
           {"id_ed25519", "tether-netbed-user"},
           {"wrong_ed25519", "tether-netbed-wrong-user"}}) {
    Status s = Tool("sshd", {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                             d + "/" + file});
    if (!s.ok()) return s;
  }
  auto user_pub = ReadFile(user_key_path() + ".pub");
  if (!user_pub.ok()) return user_pub.take_error();
  Status s = WriteFile(d + "/authorized_keys", *user_pub, 0600);
  if (!s.ok()) return s;
  auto host_pub = ReadFile(d + "/host_ed25519.pub");
  if (!host_pub.ok()) return host_pub.take_error();
  std::istringstream pub_in(*host_pub);
  std::string type, blob;
  if (!(pub_in >> type >> blob)) return MakeError("sshd", "unreadable host key");
  host_pubkey_ = type + " " + blob;

  std::vector<std::pair<std::string, std::string>> defaults = {{"ListenAddress", ip_}};
  if (loopback_) defaults.emplace_back("ListenAddress", "127.0.0.1");
  for (const auto& entry : std::vector<std::pair<std::string, std::string>>{
           {"Port", std::to_string(port_)},
           {"HostKey", d + "/host_ed25519"},
           {"PidFile", d + "/sshd.pid"},
           {"AuthorizedKeysFile", d + "/authorized_keys"},
           {"StrictModes", "no"},
           {"UsePAM", "no"},
           {"PubkeyAuthentication", "yes"},
           {"PasswordAuthentication", "no"},
           {"KbdInteractiveAuthentication", "no"},
           {"PermitRootLogin", "prohibit-password"},
           {"AllowTcpForwarding", "yes"},
           {"AllowStreamLocalForwarding", "yes"},
           {"MaxStartups", "100"},
           {"LogLevel", "VERBOSE"},
           {"PrintMotd", "no"},
           {"Subsystem", "sftp internal-sftp"},
       }) {
    defaults.push_back(entry);
  }
  // As Sshd: a line of extra_config replaces the defaults with its keyword (sshd keeps the
  // first value), other lines are added, from "Match" on verbatim.
  std::vector<std::string> added, match_tail;
  bool in_match = false;
  for (const std::string& line : options.extra_config) {
    std::string kw = Keyword(line);
    if (kw == "match") in_match = true;
    if (in_match) {
      match_tail.push_back(line);
      continue;
    }
    if (kw.empty()) continue;
    for (auto& entry : defaults) {
      if (Lower(entry.first) == kw) entry.first.clear();
    }
    added.push_back(Trim(line));
  }
  std::string config = "# Written by the tether network test bed (tests/e2e/netbed.cc).\n";
  for (const auto& [key, value] : defaults) {
    if (!key.empty()) config += key + " " + value + "\n";
  }
  for (const auto& line : added) config += line + "\n";
  for (const auto& line : match_tail) config += line + "\n";
  s = WriteFile(sshd_config_path(), AdaptSshdConfig(config, SshdBinary()), 0600);
  if (!s.ok()) return s;
  s = WriteFile(known_hosts_path(), KnownHostsName(ip_, port_) + " " + host_pubkey_ + "\n", 0600);
  if (!s.ok()) return s;
  s = WriteClientConfig(config_path());
  if (!s.ok()) return s;
  return Launch();
}

Status ServerSshd::Launch() {
  const std::string log = log_path();
  auto before = ReadFile(log);
  const size_t log_offset = before.ok() ? before->size() : 0;
  auto child = SpawnProcess(InNetNs(ns_, {SshdBinary(), "-D", "-e", "-f", sshd_config_path()}), {},
                            log, /*die_with_parent_thread=*/true);
  if (!child.ok()) return child.take_error();
  listener_ = std::move(*child);
  const std::string listening = "Server listening on " + ip_ + " port " + std::to_string(port_);
  auto start = Clock::now();
  bool up = WaitFor(
      [&] {
        if (!listener_.Running()) return true;
        auto text = ReadFile(log);
        if (text.ok() && text->find(listening, log_offset) != std::string::npos) return true;
        if (Clock::now() - start < milliseconds(1000)) return false;
        bool accepts = false;
        (void)RunInNetNs(ns_, [&] { accepts = ConnectTcpTo(ip_, port_, milliseconds(500)).ok(); });
        return accepts;
      },
      kStartTimeout);
  if (!listener_.Running()) {
    return MakeError("sshd", "sshd in " + ns_ + " exited with " +
                                 std::to_string(listener_.exit_code().value_or(-1)) + ":\n" +
                                 LogTail());
  }
  if (!up) {
    listener_.Kill();
    return MakeError("sshd", "sshd in " + ns_ + " did not listen on " + ip_ + ":" +
                                 std::to_string(port_) + " in 10 s:\n" + LogTail());
  }
  return Status::Ok();
}

Status ServerSshd::Restart() {
  if (!dir_) return MakeError("sshd", "Restart() before Start()");
  Stop();
  return Launch();
}

void ServerSshd::KillSessions(int signal_first) {
  for (int round = 0; round < kKillRounds; ++round) {
    std::vector<pid_t> targets;
    if (listener_.valid() && listener_.Running()) targets = ProcessDescendants(listener_.pid());
    for (const auto& [pid, start_time] : orphans_) {
      if (StartTime(pid) != start_time || !ProcessAlive(pid)) continue;  // gone or reused
      targets.push_back(pid);
      for (pid_t d : ProcessDescendants(pid)) targets.push_back(d);
    }
    if (targets.empty()) break;
    SignalPids(targets, signal_first, milliseconds(3000));
  }
  orphans_.clear();
}

void ServerSshd::Stop() {
  KillSessions(SIGTERM);
  if (listener_.valid()) listener_.Terminate(milliseconds(5000));
  listener_ = Child();
}

void ServerSshd::Kill() {
  std::vector<pid_t> all;
  if (listener_.valid() && listener_.Running()) {
    all = ProcessDescendants(listener_.pid());
    all.push_back(listener_.pid());
  }
  SignalPids(all, SIGKILL, kKillWait);
  KillSessions(SIGKILL);  // orphans, and anything forked meanwhile
  listener_.Kill();       // reaps it
  listener_ = Child();
}

void ServerSshd::StopListener() {
  if (!listener_.valid() || !listener_.Running()) return;
  for (pid_t p : ProcessDescendants(listener_.pid())) {
    if (uint64_t t = StartTime(p); t != 0) orphans_.emplace_back(p, t);
  }
  listener_.Terminate(milliseconds(5000));
  listener_ = Child();
}

void ServerSshd::DropConnections() {
  // Only the listener's descendants: orphans of a stopped listener are kept for Stop().
  auto orphans = std::move(orphans_);
  orphans_.clear();
  KillSessions(SIGTERM);
  orphans_ = std::move(orphans);
}

bool ServerSshd::running() { return listener_.valid() && listener_.Running(); }

Status ServerSshd::AddKnownHost(const std::string& host, uint16_t port) {
  if (!dir_) return MakeError("sshd", "AddKnownHost() before Start()");
  auto text = ReadFile(known_hosts_path());
  if (!text.ok()) return text.take_error();
  return WriteFile(known_hosts_path(),
                   *text + KnownHostsName(host, port) + " " + host_pubkey_ + "\n", 0600);
}

Status ServerSshd::WriteClientConfig(const std::string& path,
                                     const ClientConfigOptions& options) const {
  if (!dir_) return MakeError("sshd", "WriteClientConfig() before Start()");
  std::vector<std::pair<std::string, std::string>> entries = {
      {"HostName", ip_},
      {"Port", std::to_string(port_)},
      {"User", user_},
      {"IdentityFile", user_key_path()},
      {"IdentitiesOnly", "yes"},
      {"UserKnownHostsFile", known_hosts_path()},
      {"StrictHostKeyChecking", "yes"},
      {"BatchMode", "yes"},
  };
  for (const auto& [key, value] : options.overrides) {
    bool found = false;
    for (auto& entry : entries) {
      if (Lower(entry.first) == Lower(key)) {
        entry.second = value;
        found = true;
      }
    }
    if (!found) entries.emplace_back(key, value);
  }
  std::string text = "# Written by the tether network test bed (tests/e2e/netbed.cc).\n";
  text += "Host " + options.host + "\n";
  for (const auto& [key, value] : entries) {
    if (!value.empty()) text += "  " + key + " " + value + "\n";
  }
  for (const auto& line : options.extra_lines) text += "  " + line + "\n";
  return WriteFile(path, text, 0600);
}

}  // namespace tether::testing
