#include "control/mux_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "control/mux_wire.h"

namespace tether::control::mux {
namespace {

using namespace std::string_literals;

// The wire values as openssh-portable's mux.c defines them, written out again here rather
// than taken from mux_wire.h, so that a wrong constant there fails a test.
constexpr uint32_t kSshMuxVer = 4;                      // SSHMUX_VER
constexpr uint32_t kMuxMsgHello = 0x00000001;           // MUX_MSG_HELLO
constexpr uint32_t kMuxCNewSession = 0x10000002;        // MUX_C_NEW_SESSION
constexpr uint32_t kMuxCAliveCheck = 0x10000004;        // MUX_C_ALIVE_CHECK
constexpr uint32_t kMuxCTerminate = 0x10000005;         // MUX_C_TERMINATE
constexpr uint32_t kMuxCOpenFwd = 0x10000006;           // MUX_C_OPEN_FWD
constexpr uint32_t kMuxCCloseFwd = 0x10000007;          // MUX_C_CLOSE_FWD
constexpr uint32_t kMuxCNewStdioFwd = 0x10000008;       // MUX_C_NEW_STDIO_FWD
constexpr uint32_t kMuxCStopListening = 0x10000009;     // MUX_C_STOP_LISTENING
constexpr uint32_t kMuxCProxy = 0x1000000f;             // MUX_C_PROXY
constexpr uint32_t kMuxCExtInfo = 0x20000001;           // MUX_C_EXT_INFO (we do not speak it)
constexpr uint32_t kMuxSOk = 0x80000001;                // MUX_S_OK
constexpr uint32_t kMuxSPermissionDenied = 0x80000002;  // MUX_S_PERMISSION_DENIED
constexpr uint32_t kMuxSFailure = 0x80000003;           // MUX_S_FAILURE
constexpr uint32_t kMuxSExitMessage = 0x80000004;       // MUX_S_EXIT_MESSAGE
constexpr uint32_t kMuxSAlive = 0x80000005;             // MUX_S_ALIVE
constexpr uint32_t kMuxSSessionOpened = 0x80000006;     // MUX_S_SESSION_OPENED
constexpr uint32_t kMuxSRemotePort = 0x80000007;        // MUX_S_REMOTE_PORT
constexpr uint32_t kMuxSTtyAllocFail = 0x80000008;      // MUX_S_TTY_ALLOC_FAIL
constexpr uint32_t kMuxSProxy = 0x8000000f;             // MUX_S_PROXY (we do not speak it)
constexpr uint32_t kMuxFwdLocal = 1;                    // MUX_FWD_LOCAL
constexpr uint32_t kMuxFwdRemote = 2;                   // MUX_FWD_REMOTE
constexpr uint32_t kMuxFwdDynamic = 3;                  // MUX_FWD_DYNAMIC
constexpr int kPortStreamlocal = -2;                    // misc.h PORT_STREAMLOCAL
constexpr int kSshEscapeCharNone = -2;                  // ssh.h SSH_ESCAPECHAR_NONE

// A payload built the way sshbuf builds one (sshbuf-getput-basic.c): integers big-endian,
// a string a uint32 length and its bytes, a C string the same up to strlen (no NUL sent).
// Mark() records where a trailing list (hello extensions, session environment) may end:
// the payload cut there is still a whole message, only with a shorter list.
class SshBuf {
 public:
  SshBuf& PutU32(uint32_t v) {  // sshbuf_put_u32
    for (int shift = 24; shift >= 0; shift -= 8) bytes_ += static_cast<char>(v >> shift);
    return *this;
  }
  SshBuf& PutString(std::string_view s) {  // sshbuf_put_string, sshbuf_put_stringb
    PutU32(static_cast<uint32_t>(s.size()));
    bytes_.append(s);
    return *this;
  }
  SshBuf& PutCString(const char* s) {  // sshbuf_put_cstring
    return PutString(std::string_view(s, std::strlen(s)));
  }
  SshBuf& Mark() {
    marks_.push_back(bytes_.size());
    return *this;
  }
  const std::string& bytes() const { return bytes_; }
  const std::vector<size_t>& marks() const { return marks_; }

 private:
  std::string bytes_;
  std::vector<size_t> marks_;
};

// --- what mux.c's client sends (each function mirrors the one named beside it)

// mux_client_hello_exchange: "no extensions".
SshBuf ClientHello() {
  SshBuf m;
  m.PutU32(kMuxMsgHello).PutU32(kSshMuxVer).Mark();
  return m;
}

// mux_master_read_cb's hello, with the "info" extension; a client may send the same shape.
SshBuf MasterHello() {
  SshBuf m;
  m.PutU32(kMuxMsgHello).PutU32(kSshMuxVer).Mark().PutCString("info").PutCString("0").Mark();
  return m;
}

// mux_client_request_alive, _terminate, _stop_listening, mux_client_proxy: type and id.
SshBuf TypeAndId(uint32_t type, uint32_t rid) {
  SshBuf m;
  m.PutU32(type).PutU32(rid);
  return m;
}

// The options and environment mux_client_request_session reads.
struct SessionOptions {
  uint32_t request_id = 0;
  int tty_flag = 0;
  int forward_x11 = 0;
  int forward_agent = 0;
  bool subsystem = false;  // options.session_type == SESSION_TYPE_SUBSYSTEM
  int escape_char = kSshEscapeCharNone;
  const char* term = nullptr;         // getenv("TERM")
  std::string command;                // the sshbuf `command`, sent with put_stringb
  std::vector<const char*> send_env;  // environ entries SendEnv permits
  std::vector<const char*> set_env;   // options.setenv
};

// mux_client_request_session.
SshBuf RequestSession(const SessionOptions& o) {
  uint32_t echar = 0xffffffff;
  if (o.escape_char != kSshEscapeCharNone) echar = static_cast<uint32_t>(o.escape_char);
  SshBuf m;
  m.PutU32(kMuxCNewSession)
      .PutU32(o.request_id)
      .PutString("")  // reserved: sshbuf_put_string(m, NULL, 0)
      .PutU32(static_cast<uint32_t>(o.tty_flag))
      .PutU32(static_cast<uint32_t>(o.forward_x11))
      .PutU32(static_cast<uint32_t>(o.forward_agent))
      .PutU32(o.subsystem ? 1 : 0)
      .PutU32(echar)
      .PutCString(o.term == nullptr ? "" : o.term)
      .PutString(o.command)
      .Mark();
  for (const char* e : o.send_env) m.PutCString(e).Mark();
  for (const char* e : o.set_env) m.PutCString(e).Mark();
  return m;
}

// readconf.h's struct Forward, the fields mux_client_forward reads.
struct SshForward {
  const char* listen_host = nullptr;
  const char* listen_path = nullptr;
  int listen_port = 0;
  const char* connect_host = nullptr;
  const char* connect_path = nullptr;
  int connect_port = 0;
};

// mux_client_forward, including its choice of the host strings.
SshBuf ClientForward(uint32_t rid, bool cancel_flag, uint32_t ftype, const SshForward& fwd) {
  const char* lhost;
  if (fwd.listen_path != nullptr) {
    lhost = fwd.listen_path;
  } else if (fwd.listen_host == nullptr) {
    lhost = "";
  } else if (*fwd.listen_host == '\0') {
    lhost = "*";
  } else {
    lhost = fwd.listen_host;
  }
  const char* chost;
  if (fwd.connect_path != nullptr) {
    chost = fwd.connect_path;
  } else if (fwd.connect_host == nullptr) {
    chost = "";
  } else {
    chost = fwd.connect_host;
  }
  SshBuf m;
  m.PutU32(cancel_flag ? kMuxCCloseFwd : kMuxCOpenFwd)
      .PutU32(rid)
      .PutU32(ftype)
      .PutCString(lhost)
      .PutU32(static_cast<uint32_t>(fwd.listen_port))
      .PutCString(chost)
      .PutU32(static_cast<uint32_t>(fwd.connect_port));
  return m;
}

// mux_client_request_stdio_fwd (ssh -W host:port, or -W /path with PORT_STREAMLOCAL).
SshBuf RequestStdioFwd(uint32_t rid, const char* host, int port) {
  SshBuf m;
  m.PutU32(kMuxCNewStdioFwd)
      .PutU32(rid)
      .PutString("")  // reserved
      .PutCString(host)
      .PutU32(static_cast<uint32_t>(port));
  return m;
}

// mux_client_request_info: a request we do not support.
SshBuf RequestInfo(uint32_t rid, const char* name) {
  SshBuf m;
  m.PutU32(kMuxCExtInfo).PutU32(rid).PutCString(name);
  return m;
}

// --- comparing decoded messages

auto Fields(const Hello& m) { return std::tie(m.version, m.extensions); }
auto Fields(const NewSession& m) {
  return std::tie(m.request_id, m.want_tty, m.want_x11, m.want_agent, m.subsystem, m.escape_char,
                  m.term, m.command, m.env);
}
auto Fields(const AliveCheck& m) { return std::tie(m.request_id); }
auto Fields(const Terminate& m) { return std::tie(m.request_id); }
auto Fields(const StopListening& m) { return std::tie(m.request_id); }
auto Fields(const Proxy& m) { return std::tie(m.request_id); }
auto Fields(const Forward& m) {
  return std::tie(m.request_id, m.type, m.listen_host, m.listen_port, m.connect_host,
                  m.connect_port, m.close);
}
auto Fields(const StdioForward& m) { return std::tie(m.request_id, m.host, m.port); }

bool Same(const ClientMessage& a, const ClientMessage& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return Fields(x) == Fields(std::get<T>(b));
      },
      a);
}

bool Same(const ServerMessage& a, const ServerMessage& b) {
  return std::tie(a.type, a.id, a.value, a.reason) == std::tie(b.type, b.id, b.value, b.reason);
}

// The payload as hex, for failure messages.
std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

// --- requests as stock ssh sends them, and what they must decode to

struct ClientCase {
  const char* name;
  SshBuf payload;
  ClientMessage want;
};

std::vector<ClientCase> ClientCases() {
  std::vector<ClientCase> cases;
  cases.push_back({"HelloWithoutExtensions", ClientHello(), Hello{4, {}}});
  cases.push_back({"HelloWithTheInfoExtension", MasterHello(), Hello{4, {{"info", "0"}}}});

  SessionOptions shell;  // ssh -t host, escape ~, agent forwarding on
  shell.request_id = 1;
  shell.tty_flag = 1;
  shell.forward_agent = 1;
  shell.escape_char = '~';
  shell.term = "xterm-256color";
  cases.push_back({"InteractiveShellWithTtyAndEscape", RequestSession(shell),
                   NewSession{1, true, false, true, false, '~', "xterm-256color", "", {}}});

  SessionOptions command;  // ssh -e none host 'uname -a', TERM unset, SendEnv and SetEnv
  command.request_id = 2;
  command.command = "uname -a";
  command.send_env = {"LANG=C.UTF-8", "LC_ALL=C"};
  command.set_env = {"FOO=bar baz"};
  cases.push_back({"CommandWithoutEscapeWithEnvironment", RequestSession(command),
                   NewSession{2,
                              false,
                              false,
                              false,
                              false,
                              kNoEscapeChar,
                              "",
                              "uname -a",
                              {"LANG=C.UTF-8", "LC_ALL=C", "FOO=bar baz"}}});

  SessionOptions subsystem;  // ssh -X -s host sftp
  subsystem.request_id = 3;
  subsystem.forward_x11 = 1;
  subsystem.subsystem = true;
  subsystem.escape_char = '~';
  subsystem.term = "dumb";
  subsystem.command = "sftp";
  cases.push_back({"SubsystemRequest", RequestSession(subsystem),
                   NewSession{3, false, true, false, true, '~', "dumb", "sftp", {}}});

  cases.push_back({"AliveCheck", TypeAndId(kMuxCAliveCheck, 7), AliveCheck{7}});
  cases.push_back({"Terminate", TypeAndId(kMuxCTerminate, 8), Terminate{8}});
  cases.push_back({"StopListening", TypeAndId(kMuxCStopListening, 9), StopListening{9}});
  cases.push_back({"Proxy", TypeAndId(kMuxCProxy, 10), Proxy{10}});

  SshForward all_interfaces;  // -L '*:8080:localhost:80' leaves listen_host ""
  all_interfaces.listen_host = "";
  all_interfaces.listen_port = 8080;
  all_interfaces.connect_host = "localhost";
  all_interfaces.connect_port = 80;
  cases.push_back({"LocalForwardOnAllInterfaces",
                   ClientForward(11, false, kMuxFwdLocal, all_interfaces),
                   Forward{11, kFwdLocal, "*", 8080, "localhost", 80, false}});

  SshForward default_bind;  // -L 2222:10.0.0.1:22
  default_bind.listen_port = 2222;
  default_bind.connect_host = "10.0.0.1";
  default_bind.connect_port = 22;
  cases.push_back({"LocalForwardWithTheDefaultBindAddress",
                   ClientForward(12, false, kMuxFwdLocal, default_bind),
                   Forward{12, kFwdLocal, "", 2222, "10.0.0.1", 22, false}});

  SshForward dynamic;  // -D 127.0.0.1:1080: connect_port 0 makes it MUX_FWD_DYNAMIC
  dynamic.listen_host = "127.0.0.1";
  dynamic.listen_port = 1080;
  cases.push_back({"DynamicForward", ClientForward(13, false, kMuxFwdDynamic, dynamic),
                   Forward{13, kFwdDynamic, "127.0.0.1", 1080, "", 0, false}});

  SshForward remote;  // -R 0:localhost:3000, the server allocates the port
  remote.listen_port = 0;
  remote.connect_host = "localhost";
  remote.connect_port = 3000;
  cases.push_back({"RemoteForwardAskingForAnAllocatedPort",
                   ClientForward(14, false, kMuxFwdRemote, remote),
                   Forward{14, kFwdRemote, "", 0, "localhost", 3000, false}});

  SshForward unix_sockets;  // -L /tmp/l.sock:/run/app.sock
  unix_sockets.listen_path = "/tmp/l.sock";
  unix_sockets.listen_port = kPortStreamlocal;
  unix_sockets.connect_path = "/run/app.sock";
  unix_sockets.connect_port = kPortStreamlocal;
  cases.push_back({"UnixSocketForward", ClientForward(15, false, kMuxFwdLocal, unix_sockets),
                   Forward{15, kFwdLocal, "/tmp/l.sock", kPortStreamLocal, "/run/app.sock",
                           kPortStreamLocal, false}});

  cases.push_back({"CancelledForward", ClientForward(16, true, kMuxFwdLocal, default_bind),
                   Forward{16, kFwdLocal, "", 2222, "10.0.0.1", 22, true}});
  cases.push_back({"CancelledRemoteForward", ClientForward(17, true, kMuxFwdRemote, remote),
                   Forward{17, kFwdRemote, "", 0, "localhost", 3000, true}});

  cases.push_back({"StdioForwardToHostAndPort", RequestStdioFwd(18, "db.internal", 5432),
                   StdioForward{18, "db.internal", 5432}});
  cases.push_back({"StdioForwardToUnixSocket", RequestStdioFwd(19, "/run/x.sock", kPortStreamlocal),
                   StdioForward{19, "/run/x.sock", kPortStreamLocal}});
  return cases;
}

class MuxClientRequest : public testing::TestWithParam<ClientCase> {};

TEST_P(MuxClientRequest, DecodesToWhatSshMeant) {
  const ClientCase& c = GetParam();
  auto got = DecodeClientMessage(c.payload.bytes());
  ASSERT_TRUE(got.ok()) << got.error().ToString() << "\n  payload " << Hex(c.payload.bytes());
  EXPECT_TRUE(Same(*got, c.want)) << "payload " << Hex(c.payload.bytes());
}

// mux.c reads a hello's extensions and a session's environment "while (sshbuf_len(m) > 0)",
// so a payload cut where one of them ends is whole; cut anywhere else it is malformed.
TEST_P(MuxClientRequest, EveryTruncationIsAnErrorUnlessAListEndsThere) {
  const ClientCase& c = GetParam();
  const std::string& bytes = c.payload.bytes();
  const std::vector<size_t>& marks = c.payload.marks();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const bool list_ends_here = std::find(marks.begin(), marks.end(), n) != marks.end();
    uint32_t rid = 0xdeadbeef;
    auto got = DecodeClientMessage(std::string_view(bytes).substr(0, n), &rid);
    EXPECT_EQ(got.ok(), list_ends_here) << "cut at " << n << " of " << Hex(bytes);
    EXPECT_EQ(rid, 0xdeadbeefu) << "a known type is not reported as unknown";
    if (got.ok()) {
      EXPECT_EQ(got->index(), c.want.index());
    }
  }
}

TEST_P(MuxClientRequest, SurvivesFramingSplitAtEveryByte) {
  const std::string& payload = GetParam().payload.bytes();
  const std::string packet = FramePacket(payload) + "next";
  for (size_t n = 0; n < payload.size() + 4; ++n) {
    Frame f = ParseFrame(std::string_view(packet).substr(0, n));
    EXPECT_EQ(f.state, Frame::State::kNeedMore) << "with " << n << " bytes buffered";
    EXPECT_EQ(f.consumed, 0u);
  }
  for (size_t n = payload.size() + 4; n <= packet.size(); ++n) {
    Frame f = ParseFrame(std::string_view(packet).substr(0, n));
    ASSERT_EQ(f.state, Frame::State::kDone) << "with " << n << " bytes buffered";
    EXPECT_EQ(f.consumed, payload.size() + 4);
    EXPECT_EQ(f.payload, payload);
  }
}

INSTANTIATE_TEST_SUITE_P(MuxFromStockSsh, MuxClientRequest, testing::ValuesIn(ClientCases()),
                         [](const testing::TestParamInfo<ClientCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(MuxWire, ConstantsAreOpensshs) {
  EXPECT_EQ(kMuxVersion, kSshMuxVer);
  EXPECT_EQ(kMsgHello, kMuxMsgHello);
  EXPECT_EQ(kNewSession, kMuxCNewSession);
  EXPECT_EQ(kAliveCheck, kMuxCAliveCheck);
  EXPECT_EQ(kTerminate, kMuxCTerminate);
  EXPECT_EQ(kOpenFwd, kMuxCOpenFwd);
  EXPECT_EQ(kCloseFwd, kMuxCCloseFwd);
  EXPECT_EQ(kNewStdioFwd, kMuxCNewStdioFwd);
  EXPECT_EQ(kStopListening, kMuxCStopListening);
  EXPECT_EQ(kProxy, kMuxCProxy);
  EXPECT_EQ(kOk, kMuxSOk);
  EXPECT_EQ(kPermissionDenied, kMuxSPermissionDenied);
  EXPECT_EQ(kFailure, kMuxSFailure);
  EXPECT_EQ(kExitMessage, kMuxSExitMessage);
  EXPECT_EQ(kAlive, kMuxSAlive);
  EXPECT_EQ(kSessionOpened, kMuxSSessionOpened);
  EXPECT_EQ(kRemotePort, kMuxSRemotePort);
  EXPECT_EQ(kTtyAllocFail, kMuxSTtyAllocFail);
  EXPECT_EQ(kFwdLocal, kMuxFwdLocal);
  EXPECT_EQ(kFwdRemote, kMuxFwdRemote);
  EXPECT_EQ(kFwdDynamic, kMuxFwdDynamic);
  EXPECT_EQ(kPortStreamLocal, static_cast<uint32_t>(kPortStreamlocal));
}

// --- malformed requests

struct BadCase {
  const char* name;
  SshBuf payload;
};

SshBuf SessionWithStrings(std::string_view term, std::string_view command,
                          std::vector<std::string_view> env) {
  SshBuf m;
  m.PutU32(kMuxCNewSession).PutU32(1).PutString("");
  for (int flag = 0; flag < 4; ++flag) m.PutU32(0);
  m.PutU32(0xffffffff).PutString(term).PutString(command);
  for (std::string_view e : env) m.PutString(e);
  return m;
}

SshBuf ForwardWithHosts(uint32_t type, std::string_view listen_host, uint32_t listen_port,
                        std::string_view connect_host, uint32_t connect_port) {
  SshBuf m;
  m.PutU32(type).PutU32(1).PutU32(kMuxFwdLocal).PutString(listen_host).PutU32(listen_port);
  m.PutString(connect_host).PutU32(connect_port);
  return m;
}

SshBuf StdioWithHost(std::string_view host, uint32_t port) {
  SshBuf m;
  m.PutU32(kMuxCNewStdioFwd).PutU32(1).PutString("").PutString(host).PutU32(port);
  return m;
}

// sshbuf_get_cstring refuses a NUL before the last byte: ssh would read a shorter string
// than the one sent, so "xterm\0rm -rf ~" must never reach anything as "xterm".
TEST(MuxDecode, RefusesNulInsideEveryCString) {
  std::vector<BadCase> cases;
  cases.push_back({"term", SessionWithStrings("xterm\0evil"s, "", {})});
  cases.push_back({"command", SessionWithStrings("xterm", "ls\0; rm -rf ~"s, {})});
  cases.push_back({"environment", SessionWithStrings("xterm", "", {"A=1", "B=\0x"s})});
  cases.push_back({"listen host", ForwardWithHosts(kMuxCOpenFwd, "lo\0cal"s, 1, "h", 2)});
  cases.push_back({"connect host", ForwardWithHosts(kMuxCOpenFwd, "", 1, "h\0x"s, 2)});
  cases.push_back({"closed forward's host", ForwardWithHosts(kMuxCCloseFwd, "", 1, "\0h"s, 2)});
  cases.push_back({"stdio host", StdioWithHost("db\0.internal"s, 5432)});
  SshBuf hello;
  hello.PutU32(kMuxMsgHello).PutU32(kSshMuxVer).PutString("in\0fo"s).PutString("0");
  cases.push_back({"hello extension name", hello});
  for (const BadCase& c : cases) {
    auto got = DecodeClientMessage(c.payload.bytes());
    EXPECT_FALSE(got.ok()) << c.name;
  }
}

// Fields mux.c reads with sshbuf_skip_string or sshbuf_get_string_direct are bytes.
TEST(MuxDecode, AcceptsAnyBytesWhereSshReadsAString) {
  SshBuf session;
  session.PutU32(kMuxCNewSession).PutU32(1).PutString("\0reserved\xff"s);
  for (int field = 0; field < 4; ++field) session.PutU32(0);
  session.PutU32(0xffffffff).PutCString("vt100").PutCString("true");
  auto got = DecodeClientMessage(session.bytes());
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(std::get<NewSession>(*got).command, "true");

  SshBuf hello;
  hello.PutU32(kMuxMsgHello).PutU32(kSshMuxVer).PutCString("blob").PutString("\0\1\2"s);
  auto hi = DecodeClientMessage(hello.bytes());
  ASSERT_TRUE(hi.ok()) << hi.error().ToString();
  ASSERT_EQ(std::get<Hello>(*hi).extensions.size(), 1u);
  EXPECT_EQ(std::get<Hello>(*hi).extensions[0].second, "\0\1\2"s);

  auto stdio = DecodeClientMessage(SshBuf()
                                       .PutU32(kMuxCNewStdioFwd)
                                       .PutU32(1)
                                       .PutString("\0"s)
                                       .PutCString("h")
                                       .PutU32(22)
                                       .bytes());
  EXPECT_TRUE(stdio.ok());
}

// mux_master_process_open_fwd and _close_fwd call a port above 65535 that is not
// PORT_STREAMLOCAL a malformed message: it must not reach a listener as port % 65536.
TEST(MuxDecode, RefusesForwardPortsOutsideTheTcpRange) {
  struct PortCase {
    uint32_t listen_port;
    uint32_t connect_port;
    bool ok;
  };
  const PortCase cases[] = {
      {65535, 65535, true},         {0, 0, true},
      {kPortStreamLocal, 22, true}, {22, kPortStreamLocal, true},
      {65536, 22, false},           {22, 65536, false},
      {70000, 80, false},           {0xffffffff, 80, false},
      {80, 0xffffffff, false},      {0x7fffffff, 80, false},
  };
  for (uint32_t type : {kMuxCOpenFwd, kMuxCCloseFwd}) {
    for (const PortCase& c : cases) {
      auto got = DecodeClientMessage(
          ForwardWithHosts(type, "127.0.0.1", c.listen_port, "localhost", c.connect_port).bytes());
      EXPECT_EQ(got.ok(), c.ok) << "type " << type << " ports " << c.listen_port << ", "
                                << c.connect_port;
    }
  }
}

// mux_master_process_stdio_fwd refuses a port that is not PORT_STREAMLOCAL and does not fit
// an int; ssh -W never sends one above 65535 (a2port), and we refuse those as well.
TEST(MuxDecode, RefusesStdioForwardPortsOutsideTheTcpRange) {
  EXPECT_TRUE(DecodeClientMessage(StdioWithHost("h", 0).bytes()).ok());
  EXPECT_TRUE(DecodeClientMessage(StdioWithHost("h", 65535).bytes()).ok());
  EXPECT_TRUE(DecodeClientMessage(StdioWithHost("/s", kPortStreamLocal).bytes()).ok());
  EXPECT_FALSE(DecodeClientMessage(StdioWithHost("h", 65536).bytes()).ok());
  EXPECT_FALSE(DecodeClientMessage(StdioWithHost("h", 0x80000000).bytes()).ok());
  EXPECT_FALSE(DecodeClientMessage(StdioWithHost("h", 0xffffffff).bytes()).ok());
}

TEST(MuxDecode, ReportsTheRequestIdOfAnUnknownType) {
  uint32_t rid = 0;
  auto got = DecodeClientMessage(RequestInfo(42, "connection").bytes(), &rid);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(rid, 42u);
  EXPECT_NE(got.error().message.find("0x20000001"), std::string::npos) << got.error().message;

  // A reply needs an id: an unknown type with none leaves the caller's value alone.
  rid = 7;
  auto bare = DecodeClientMessage(SshBuf().PutU32(kMuxSProxy).bytes(), &rid);
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(rid, 7u);
  EXPECT_NE(bare.error().message.find("0x8000000f"), std::string::npos) << bare.error().message;

  // Without somewhere to put the id the error is the same.
  EXPECT_FALSE(DecodeClientMessage(RequestInfo(43, "channels").bytes()).ok());
}

TEST(MuxDecode, RefusesAPayloadTooShortForItsType) {
  EXPECT_FALSE(DecodeClientMessage("").ok());
  EXPECT_FALSE(DecodeClientMessage("\x10\x00\x00"s).ok());
  EXPECT_EQ(PayloadType(""), 0u);
  EXPECT_EQ(PayloadType("\x10\x00\x00"s), 0u);
  EXPECT_EQ(PayloadType(TypeAndId(kMuxCTerminate, 1).bytes()), kTerminate);
}

// A session may carry at most kMaxEnvStrings variables; the rest are read and dropped, as
// mux.c ignores them, rather than growing without bound.
TEST(MuxDecode, KeepsNoMoreEnvironmentThanTheLimit) {
  SessionOptions o;
  o.command = "env";
  std::vector<std::string> vars;
  for (size_t i = 0; i < kMaxEnvStrings + 100; ++i) vars.push_back("V" + std::to_string(i) + "=1");
  for (const std::string& v : vars) o.set_env.push_back(v.c_str());
  SshBuf m = RequestSession(o);
  ASSERT_LE(m.bytes().size(), kMaxPacketBytes);
  auto got = DecodeClientMessage(m.bytes());
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  const auto& env = std::get<NewSession>(*got).env;
  ASSERT_EQ(env.size(), kMaxEnvStrings);
  EXPECT_EQ(env.front(), "V0=1");
  EXPECT_EQ(env.back(), vars[kMaxEnvStrings - 1]);
}

// --- framing

// mux_client_write_packet: sshbuf_put_stringb, the payload behind its uint32 length.
TEST(MuxFrame, FramesAPacketAsSshWritesIt) {
  const std::string payload = TypeAndId(kMuxCAliveCheck, 3).bytes();
  EXPECT_EQ(FramePacket(payload), SshBuf().PutString(payload).bytes());
  EXPECT_EQ(FramePacket(""), "\0\0\0\0"s);
}

TEST(MuxFrame, ParsesAnEmptyPacket) {
  Frame f = ParseFrame("\0\0\0\0rest"s);
  ASSERT_EQ(f.state, Frame::State::kDone);
  EXPECT_EQ(f.consumed, 4u);
  EXPECT_EQ(f.payload, "");
}

TEST(MuxFrame, TakesOnePacketAtATime) {
  const std::string a = TypeAndId(kMuxCAliveCheck, 1).bytes();
  const std::string b = TypeAndId(kMuxCTerminate, 2).bytes();
  const std::string buffered = FramePacket(a) + FramePacket(b);
  Frame first = ParseFrame(buffered);
  ASSERT_EQ(first.state, Frame::State::kDone);
  EXPECT_EQ(first.payload, a);
  Frame second = ParseFrame(std::string_view(buffered).substr(first.consumed));
  ASSERT_EQ(second.state, Frame::State::kDone);
  EXPECT_EQ(second.payload, b);
  EXPECT_EQ(first.consumed + second.consumed, buffered.size());
}

// channels.c (CHANNEL_MUX_MAX_PACKET) drops a client announcing more than 256 KiB; we say
// so as soon as the length is in, without waiting for the body.
TEST(MuxFrame, ReportsAnOversizedFrameAsTooLarge) {
  struct SizeCase {
    uint32_t length;
    Frame::State want;
  };
  const SizeCase cases[] = {
      {static_cast<uint32_t>(kMaxPacketBytes), Frame::State::kNeedMore},
      {static_cast<uint32_t>(kMaxPacketBytes) + 1, Frame::State::kTooLarge},
      {0x7fffffff, Frame::State::kTooLarge},
      {0xffffffff, Frame::State::kTooLarge},
  };
  for (const SizeCase& c : cases) {
    const std::string header = SshBuf().PutU32(c.length).bytes();
    Frame f = ParseFrame(header);
    EXPECT_EQ(f.state, c.want) << "length " << c.length;
    EXPECT_EQ(f.consumed, 0u);
    EXPECT_EQ(ParseFrame(header + "partial body").state, c.want) << "length " << c.length;
  }
  const std::string largest = FramePacket(std::string(kMaxPacketBytes, 'x'));
  Frame f = ParseFrame(largest);
  ASSERT_EQ(f.state, Frame::State::kDone);
  EXPECT_EQ(f.consumed, largest.size());
}

// --- what we send, byte for byte as mux.c builds it

struct EncodeCase {
  const char* name;
  std::string got;
  SshBuf want;
};

TEST(MuxEncode, RepliesAreWhatMuxMasterSends) {
  std::vector<EncodeCase> cases;
  // mux_master_read_cb also sends the "info" extension; mux_client_hello_exchange reads
  // extensions only while bytes remain, so a bare hello is as good.
  cases.push_back({"hello", EncodeHello(), SshBuf().PutU32(kMuxMsgHello).PutU32(kSshMuxVer)});
  cases.push_back({"ok (reply_ok)", EncodeOk(5), TypeAndId(kMuxSOk, 5)});
  cases.push_back({"failure (reply_error)", EncodeFailure(5, "unsupported request"),
                   TypeAndId(kMuxSFailure, 5).PutCString("unsupported request")});
  cases.push_back({"permission denied (reply_error)",
                   EncodePermissionDenied(6, "Permission denied"),
                   TypeAndId(kMuxSPermissionDenied, 6).PutCString("Permission denied")});
  cases.push_back({"alive (mux_master_process_alive_check)", EncodeAlive(7, 4242),
                   TypeAndId(kMuxSAlive, 7).PutU32(4242)});
  cases.push_back({"session opened (mux_session_confirm)", EncodeSessionOpened(8, 3),
                   TypeAndId(kMuxSSessionOpened, 8).PutU32(3)});
  cases.push_back({"exit message (mux_exit_message)", EncodeExitMessage(3, 130),
                   TypeAndId(kMuxSExitMessage, 3).PutU32(130)});
  cases.push_back({"tty alloc fail (mux_tty_alloc_failed)", EncodeTtyAllocFail(3),
                   TypeAndId(kMuxSTtyAllocFail, 3)});
  cases.push_back({"remote port (mux_confirm_remote_forward)", EncodeRemotePort(9, 40000),
                   TypeAndId(kMuxSRemotePort, 9).PutU32(40000)});
  for (const EncodeCase& c : cases) {
    EXPECT_EQ(Hex(c.got), Hex(c.want.bytes())) << c.name;
  }
}

TEST(MuxEncode, ClientRequestsAreWhatSshSends) {
  EXPECT_EQ(Hex(EncodeClientHello()), Hex(ClientHello().bytes()));
  EXPECT_EQ(Hex(EncodeAliveCheck(0)), Hex(TypeAndId(kMuxCAliveCheck, 0).bytes()));
  EXPECT_EQ(Hex(EncodeAliveCheck(0xfffffffe)), Hex(TypeAndId(kMuxCAliveCheck, 0xfffffffe).bytes()));

  SessionOptions o;
  o.request_id = 4;
  o.tty_flag = 1;
  o.escape_char = '~';
  o.term = "screen";
  o.command = "tail -f /var/log/syslog";
  o.set_env = {"LANG=C", "TZ=UTC"};
  NewSession s{
      4, true, false, false, false, '~', "screen", "tail -f /var/log/syslog", {"LANG=C", "TZ=UTC"}};
  EXPECT_EQ(Hex(EncodeNewSession(s)), Hex(RequestSession(o).bytes()));

  SessionOptions none;  // -e none, no tty, TERM unset, interactive shell
  none.request_id = 5;
  NewSession bare{5, false, false, false, false, kNoEscapeChar, "", "", {}};
  EXPECT_EQ(Hex(EncodeNewSession(bare)), Hex(RequestSession(none).bytes()));
}

TEST(MuxEncode, NewSessionRoundTripsThroughTheDecoder) {
  const NewSession cases[] = {
      {},
      {1, true, true, true, true, '~', "xterm", "", {}},
      {0xffffffff, false, false, false, false, kNoEscapeChar, "", "ls -la", {"A=1"}},
      {7, true, false, true, false, 0x1d, "linux", "sftp", {"X=", "Y=two words", ""}},
      {8, false, true, false, true, 0, std::string(1000, 't'), std::string(70000, 'c'),
       std::vector<std::string>(300, "LONG=" + std::string(100, 'v'))},
  };
  for (const NewSession& s : cases) {
    const std::string payload = EncodeNewSession(s);
    auto got = DecodeClientMessage(payload);
    ASSERT_TRUE(got.ok()) << got.error().ToString();
    EXPECT_TRUE(Same(*got, s)) << Hex(payload.substr(0, 200));
  }
}

// --- replies as our client reads them

struct ServerCase {
  const char* name;
  SshBuf payload;
  ServerMessage want;
};

TEST(MuxDecodeServer, ReadsEveryReplyMuxMasterSends) {
  std::vector<ServerCase> cases;
  cases.push_back({"hello with info", MasterHello(), {kMuxMsgHello, 0, 4, ""}});
  cases.push_back(
      {"bare hello", SshBuf().PutU32(kMuxMsgHello).PutU32(4).Mark(), {kMuxMsgHello, 0, 4, ""}});
  cases.push_back({"ok", TypeAndId(kMuxSOk, 11), {kMuxSOk, 11, 0, ""}});
  cases.push_back({"permission denied",
                   TypeAndId(kMuxSPermissionDenied, 12).PutCString("Permission denied"),
                   {kMuxSPermissionDenied, 12, 0, "Permission denied"}});
  cases.push_back({"failure",
                   TypeAndId(kMuxSFailure, 13).PutCString("Multiple sessions not supported"),
                   {kMuxSFailure, 13, 0, "Multiple sessions not supported"}});
  cases.push_back({"failure without words",
                   TypeAndId(kMuxSFailure, 14).PutCString(""),
                   {kMuxSFailure, 14, 0, ""}});
  cases.push_back({"alive", TypeAndId(kMuxSAlive, 15).PutU32(31337), {kMuxSAlive, 15, 31337, ""}});
  cases.push_back({"session opened",
                   TypeAndId(kMuxSSessionOpened, 16).PutU32(2),
                   {kMuxSSessionOpened, 16, 2, ""}});
  cases.push_back(
      {"exit message", TypeAndId(kMuxSExitMessage, 2).PutU32(255), {kMuxSExitMessage, 2, 255, ""}});
  cases.push_back(
      {"tty alloc fail", TypeAndId(kMuxSTtyAllocFail, 2), {kMuxSTtyAllocFail, 2, 0, ""}});
  cases.push_back({"remote port",
                   TypeAndId(kMuxSRemotePort, 17).PutU32(40001),
                   {kMuxSRemotePort, 17, 40001, ""}});
  for (const ServerCase& c : cases) {
    const std::string& bytes = c.payload.bytes();
    auto got = DecodeServerMessage(bytes);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.error().ToString();
    EXPECT_TRUE(Same(*got, c.want)) << c.name << ": type " << got->type << " id " << got->id
                                    << " value " << got->value << " reason " << got->reason;
    // Cut before its fixed fields end, every reply is malformed (our client ignores the
    // hello's extensions, so a hello is whole once its version is in).
    const size_t whole_at = c.payload.marks().empty() ? bytes.size() : c.payload.marks()[0];
    for (size_t n = 0; n < whole_at; ++n) {
      EXPECT_FALSE(DecodeServerMessage(std::string_view(bytes).substr(0, n)).ok())
          << c.name << " cut at " << n;
    }
  }
}

TEST(MuxDecodeServer, ReadsWhatOurOwnEncodersWrite) {
  auto alive = DecodeServerMessage(EncodeAlive(3, 99));
  ASSERT_TRUE(alive.ok());
  EXPECT_TRUE(Same(*alive, {kAlive, 3, 99, ""}));
  auto denied = DecodeServerMessage(EncodePermissionDenied(4, "refused by policy"));
  ASSERT_TRUE(denied.ok());
  EXPECT_TRUE(Same(*denied, {kPermissionDenied, 4, 0, "refused by policy"}));
  auto hello = DecodeServerMessage(EncodeHello());
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(hello->value, kMuxVersion);
}

TEST(MuxDecodeServer, RefusesRepliesItDoesNotKnow) {
  EXPECT_FALSE(DecodeServerMessage("").ok());
  EXPECT_FALSE(DecodeServerMessage(TypeAndId(kMuxSProxy, 1).bytes()).ok());
  EXPECT_FALSE(DecodeServerMessage(TypeAndId(0x90000001, 1).PutU32(1).PutCString("x").bytes())
                   .ok());  // MUX_S_EXT_INFO
  EXPECT_FALSE(DecodeServerMessage(TypeAndId(kMuxCAliveCheck, 1).bytes()).ok());
}

}  // namespace
}  // namespace tether::control::mux
