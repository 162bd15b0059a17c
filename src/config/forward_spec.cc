// Forward specifications, in OpenSSH's grammar (ssh(1) -L/-R/-D, readconf.c parse_forward).
//
// A spec is split on ':' into at most four fields. A field in [brackets] is taken literally
// (that is how IPv6 addresses and socket paths containing ':' are written) and stored without
// the brackets. A field containing '/' is a unix socket path. The number of fields and which
// of them are paths decide the form. The examples below are the test table in
// tests/unit/config/forward_spec_test.cc; keep the two in step.
//
// -L: the laptop listens, the server connects.
//   8000:localhost:8000             listen on loopback 8000, target localhost:8000
//   127.0.0.1:8000:gpu-node:80      bind address given
//   *:8000:localhost:80             all interfaces, bind stored as "*"
//   :8000:localhost:80              all interfaces (empty bind), bind stored as "*"
//   localhost:8000:localhost:80     "localhost" is kept as written
//   [::1]:8000:[fe80::1]:80         IPv6 in brackets, stored without them
//   8000:/run/app.sock              target: a socket on the server
//   127.0.0.1:8000:/run/app.sock
//   /tmp/local.sock:localhost:80    listen on a socket on the laptop
//   /tmp/local.sock:/run/app.sock   socket to socket
//   [/tmp/a:b.sock]:localhost:80    a path containing ':' goes in brackets
// -R: the server listens, the laptop connects.
//   8080:localhost:80
//   0.0.0.0:8080:localhost:80
//   0:localhost:80                  listen port 0: the server picks one
//   8080:/tmp/app.sock              target: a socket on the laptop
//   /run/r.sock:localhost:80        listen on a socket on the server
//   /run/r.sock:/tmp/app.sock
//   1080                            no target: a reverse dynamic (SOCKS) forward
//   *:1080                          the same, on all of the server's interfaces
// -D: a SOCKS proxy on the laptop.
//   1080
//   127.0.0.1:1080
//   [::1]:1080
// Refused, with the reason:
//   -L 80x:localhost:80             listen port "80x" is not a number
//   -L 0:localhost:80               listen port 0 is out of range (only -R may listen on 0)
//   -L 8000:localhost:70000         target port 70000 is out of range
//   -L 8000:localhost               too few parts
//   -L 8000                         missing the target
//   -L 1:2:3:4:5                    too many parts
//   -L ::1:8000:h:80                too many parts (IPv6 addresses go in brackets)
//   -L [::1:8000:h:80               unbalanced '['
//   -L ::1]:8000:h:80               unbalanced ']'
//   -L 8000::80                     target host is empty
//   -L 8000:local host:80           whitespace
//   -L 8000:localhost:             target port is empty
//   -L (empty)                      empty
//   -R /run/r.sock                  a socket listener needs a target
//   -D /tmp/socks.sock              takes a port, not a socket path
//   -D 1:2:3                        too many parts
//
// The ssh_config lines take the same grammar with the listen side and the target as two
// words: "LocalForward [bind:]port host:hostport", "RemoteForward [bind:]port [host:hostport]",
// "DynamicForward [bind:]port".
//
// Not supported (OpenSSH has them): service names for ports ("http"), and backslash escapes
// inside a field; use a number and brackets instead.
#include "config/forward_spec.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace tether::config {
namespace {

constexpr std::string_view kStep = "forward spec";
constexpr uint32_t kMaxPort = 65535;
// More fields than any form has; splitting stops there so a hostile spec costs nothing.
constexpr size_t kMaxFields = 5;

// The forms a spec can take, for the "(expected ...)" part of an error.
enum class Shape { kPortToHost, kPortToSocket, kSocketToHost, kSocketToSocket, kPortOnly, kAny };

struct Field {
  std::string text;  // without brackets
  bool is_path = false;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && !IsSpace(c)) || u == 0x7f;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// How the spec was written, so errors can quote it and show the form in the same syntax.
struct SpecSource {
  ForwardKind kind;
  bool config_line;          // "LocalForward a b" rather than "-L a:b"
  std::string_view written;  // the spec (or the line's arguments) as the user wrote them

  std::string Label() const {
    if (config_line) {
      switch (kind) {
        case ForwardKind::kLocal:
          return "LocalForward";
        case ForwardKind::kRemote:
          return "RemoteForward";
        case ForwardKind::kDynamic:
          return "DynamicForward";
      }
    }
    switch (kind) {
      case ForwardKind::kLocal:
        return "-L";
      case ForwardKind::kRemote:
        return "-R";
      case ForwardKind::kDynamic:
        return "-D";
    }
    return "";
  }

  std::string Form(Shape shape) const {
    // -L names its sockets from the laptop's side, -R from the server's.
    const std::string listen_socket =
        kind == ForwardKind::kRemote ? "remote_socket" : "local_socket";
    const std::string target_socket =
        kind == ForwardKind::kRemote ? "local_socket" : "remote_socket";
    const std::string sep = config_line ? " " : ":";
    switch (shape) {
      case Shape::kPortToHost:
        return "[bind:]port" + sep + "host:hostport";
      case Shape::kPortToSocket:
        return "[bind:]port" + sep + target_socket;
      case Shape::kSocketToHost:
        return listen_socket + sep + "host:hostport";
      case Shape::kSocketToSocket:
        return listen_socket + sep + target_socket;
      case Shape::kPortOnly:
        return "[bind:]port";
      case Shape::kAny:
        break;
    }
    if (kind == ForwardKind::kDynamic) return Form(Shape::kPortOnly);
    std::string all = Form(Shape::kPortToHost) + ", " + Form(Shape::kPortToSocket) + ", " +
                      Form(Shape::kSocketToHost);
    if (kind == ForwardKind::kRemote) {
      return all + ", " + Form(Shape::kSocketToSocket) + " or " + Form(Shape::kPortOnly);
    }
    return all + " or " + Form(Shape::kSocketToSocket);
  }

  Error Fail(std::string_view what, Shape shape) const {
    return MakeError(std::string(kStep), Label() + " \"" + std::string(written) + "\": " +
                                             std::string(what) + " (expected " + Form(shape) + ")");
  }
};

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Splits on ':' outside brackets. At most kMaxFields fields are returned; the caller treats
// that many as "too many parts".
Result<std::vector<Field>> SplitFields(const SpecSource& src, std::string_view s) {
  std::vector<Field> fields;
  size_t i = 0;
  while (fields.size() < kMaxFields) {
    Field f;
    if (i < s.size() && s[i] == '[') {
      const size_t close = s.find(']', i + 1);
      if (close == std::string_view::npos) return src.Fail("unbalanced '['", Shape::kAny);
      f.text = std::string(s.substr(i + 1, close - i - 1));
      if (f.text.find('[') != std::string::npos) return src.Fail("unbalanced '['", Shape::kAny);
      i = close + 1;
      if (i < s.size() && s[i] != ':') {
        return src.Fail("']' must end a field (\"[address]:port\")", Shape::kAny);
      }
    } else {
      const size_t colon = s.find(':', i);
      const size_t end = colon == std::string_view::npos ? s.size() : colon;
      f.text = std::string(s.substr(i, end - i));
      if (f.text.find(']') != std::string::npos) return src.Fail("unbalanced ']'", Shape::kAny);
      if (f.text.find('[') != std::string::npos) {
        return src.Fail("'[' must start a field (\"[address]:port\")", Shape::kAny);
      }
      i = end;
    }
    f.is_path = f.text.find('/') != std::string::npos;
    fields.push_back(std::move(f));
    if (i >= s.size()) break;
    ++i;  // past the ':'
  }
  return fields;
}

Result<uint16_t> ParsePort(const SpecSource& src, const Field& f, std::string_view what,
                           bool allow_zero, Shape shape) {
  if (f.text.empty()) return src.Fail(std::string(what) + " is empty", shape);
  uint32_t value = 0;
  for (char c : f.text) {
    if (c < '0' || c > '9') {
      return src.Fail(std::string(what) + " " + Quoted(f.text) + " is not a number", shape);
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
    if (value > kMaxPort) {
      return src.Fail(std::string(what) + " " + f.text + " is out of range (1-65535)", shape);
    }
  }
  if (value == 0 && !allow_zero) {
    return src.Fail(std::string(what) + " 0 is out of range (1-65535; only -R may listen on 0)",
                    shape);
  }
  return static_cast<uint16_t>(value);
}

// A bind address: empty and "*" both mean every interface and are stored as "*".
Status SetBind(const SpecSource& src, const Field& f, Endpoint& e, Shape shape) {
  if (f.is_path) {
    return src.Fail("bind address " + Quoted(f.text) + " looks like a socket path", shape);
  }
  e.host = f.text.empty() ? "*" : f.text;
  return Status::Ok();
}

Status SetListenPort(const SpecSource& src, const Field& f, Endpoint& e, Shape shape) {
  if (f.is_path) {
    return src.Fail("listen port " + Quoted(f.text) + " looks like a socket path", shape);
  }
  // Port 0 asks the server to pick, which only makes sense where the server listens.
  auto port = ParsePort(src, f, "listen port", src.kind == ForwardKind::kRemote, shape);
  if (!port) return port.take_error();
  e.port = *port;
  return Status::Ok();
}

Status SetTarget(const SpecSource& src, const Field& host, const Field& port, Endpoint& e,
                 Shape shape) {
  if (host.text.empty()) return src.Fail("target host is empty", shape);
  if (host.is_path) {
    return src.Fail("target host " + Quoted(host.text) +
                        " looks like a socket path (a socket target takes no port)",
                    shape);
  }
  if (port.is_path) {
    return src.Fail("target port " + Quoted(port.text) + " looks like a socket path", shape);
  }
  auto p = ParsePort(src, port, "target port", false, shape);
  if (!p) return p.take_error();
  e.host = host.text;
  e.port = *p;
  return Status::Ok();
}

Result<ForwardSpec> AssembleDynamic(const SpecSource& src, const std::vector<Field>& f) {
  ForwardSpec spec;
  spec.kind = ForwardKind::kDynamic;
  spec.dynamic = true;
  if (f.size() > 2) return src.Fail("too many parts", Shape::kPortOnly);
  if (f.size() == 1 && f[0].is_path) {
    return src.Fail("takes a port, not a socket path", Shape::kPortOnly);
  }
  if (f.size() == 2) {
    if (Status s = SetBind(src, f[0], spec.listen, Shape::kPortOnly); !s) return s.take_error();
  }
  if (Status s = SetListenPort(src, f.back(), spec.listen, Shape::kPortOnly); !s)
    return s.take_error();
  return spec;
}

// -L and -R share the forms; -R adds the target-less (reverse dynamic) ones and port 0.
Result<ForwardSpec> AssembleForward(const SpecSource& src, const std::vector<Field>& f) {
  ForwardSpec spec;
  spec.kind = src.kind;
  const bool remote = src.kind == ForwardKind::kRemote;
  switch (f.size()) {
    case 1:
      if (f[0].is_path) return src.Fail("a socket listener needs a target", Shape::kAny);
      if (!remote) return src.Fail("missing the target", Shape::kPortToHost);
      if (Status s = SetListenPort(src, f[0], spec.listen, Shape::kPortOnly); !s)
        return s.take_error();
      spec.dynamic = true;
      return spec;
    case 2:
      if (f[1].is_path) {
        if (f[0].is_path) {
          spec.listen.path = f[0].text;
        } else {
          if (Status s = SetListenPort(src, f[0], spec.listen, Shape::kPortToSocket); !s)
            return s.take_error();
        }
        spec.target.path = f[1].text;
        return spec;
      }
      if (f[0].is_path) return src.Fail("too few parts", Shape::kSocketToHost);
      if (!remote) return src.Fail("too few parts", Shape::kPortToHost);
      if (Status s = SetBind(src, f[0], spec.listen, Shape::kPortOnly); !s) return s.take_error();
      if (Status s = SetListenPort(src, f[1], spec.listen, Shape::kPortOnly); !s)
        return s.take_error();
      spec.dynamic = true;
      return spec;
    case 3:
      if (f[0].is_path) {
        spec.listen.path = f[0].text;
        if (Status s = SetTarget(src, f[1], f[2], spec.target, Shape::kSocketToHost); !s)
          return s.take_error();
      } else if (f[2].is_path) {
        if (Status s = SetBind(src, f[0], spec.listen, Shape::kPortToSocket); !s)
          return s.take_error();
        if (Status s = SetListenPort(src, f[1], spec.listen, Shape::kPortToSocket); !s)
          return s.take_error();
        spec.target.path = f[2].text;
      } else {
        if (Status s = SetListenPort(src, f[0], spec.listen, Shape::kPortToHost); !s)
          return s.take_error();
        if (Status s = SetTarget(src, f[1], f[2], spec.target, Shape::kPortToHost); !s)
          return s.take_error();
      }
      return spec;
    case 4:
      if (Status s = SetBind(src, f[0], spec.listen, Shape::kPortToHost); !s) return s.take_error();
      if (Status s = SetListenPort(src, f[1], spec.listen, Shape::kPortToHost); !s)
        return s.take_error();
      if (Status s = SetTarget(src, f[2], f[3], spec.target, Shape::kPortToHost); !s)
        return s.take_error();
      return spec;
    default:
      return src.Fail("too many parts; IPv6 addresses go in brackets, as [::1]", Shape::kAny);
  }
}

Result<ForwardSpec> ParseText(const SpecSource& src, std::string_view text) {
  text = Trim(text);
  if (text.empty()) return src.Fail("empty specification", Shape::kAny);
  for (char c : text) {
    if (IsSpace(c)) return src.Fail("whitespace inside the specification", Shape::kAny);
    if (IsControl(c)) return src.Fail("control character inside the specification", Shape::kAny);
  }
  auto fields = SplitFields(src, text);
  if (!fields) return fields.take_error();
  if (src.kind == ForwardKind::kDynamic) return AssembleDynamic(src, *fields);
  return AssembleForward(src, *fields);
}

// A field as ToString writes it: brackets where a ':' would otherwise split it.
std::string FieldText(std::string_view text) {
  if (text.find(':') != std::string_view::npos) return "[" + std::string(text) + "]";
  return std::string(text);
}

std::string ListenText(const Endpoint& e) {
  if (e.is_unix()) return FieldText(e.path);
  if (e.host.empty()) return std::to_string(e.port);
  return FieldText(e.host) + ":" + std::to_string(e.port);
}

std::string TargetText(const Endpoint& e) {
  if (e.is_unix()) return FieldText(e.path);
  return FieldText(e.host) + ":" + std::to_string(e.port);
}

}  // namespace

std::string Endpoint::ToString() const {
  if (is_unix()) return path;
  if (host.empty()) return ":" + std::to_string(port);
  return FieldText(host) + ":" + std::to_string(port);
}

std::string ForwardSpec::ToString() const {
  std::string out = ListenText(listen);
  if (kind != ForwardKind::kDynamic && !dynamic) out += ":" + TargetText(target);
  return out;
}

std::string ForwardSpec::ToFlagString() const {
  const char* flag = kind == ForwardKind::kLocal    ? "-L "
                     : kind == ForwardKind::kRemote ? "-R "
                                                    : "-D ";
  return flag + ToString();
}

Result<ForwardSpec> ParseForwardSpec(ForwardKind kind, std::string_view spec) {
  return ParseText(SpecSource{kind, false, spec}, spec);
}

Result<std::vector<std::string>> SplitConfigWords(std::string_view args) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < args.size()) {
    if (args[i] == ' ' || args[i] == '\t') {
      ++i;
      continue;
    }
    if (args[i] == '#') break;  // a comment starts where a word would
    std::string word;
    char quote = 0;
    for (; i < args.size(); ++i) {
      const char c = args[i];
      if (c == '\\' && i + 1 < args.size()) {
        const char next = args[i + 1];
        if (next == '\'' || next == '"' || next == '\\' || (quote == 0 && next == ' ')) {
          word += next;
          ++i;
          continue;
        }
        word += c;  // not an escape readconf knows: kept as written
      } else if (quote == 0 && (c == ' ' || c == '\t')) {
        break;
      } else if (quote == 0 && (c == '"' || c == '\'')) {
        quote = c;
      } else if (quote != 0 && c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    }
    if (quote != 0) return MakeError("config", "unterminated quote");
    words.push_back(std::move(word));
  }
  return words;
}

Result<ForwardSpec> ParseForwardConfigArgs(ForwardKind kind, std::string_view args) {
  const SpecSource src{kind, true, Trim(args)};
  auto words = SplitConfigWords(args);
  if (!words) return src.Fail("unterminated quote", Shape::kAny);
  if (words->empty()) return src.Fail("missing arguments", Shape::kAny);
  if (kind == ForwardKind::kDynamic) {
    if (words->size() > 1) return src.Fail("too many words", Shape::kPortOnly);
    return ParseText(src, (*words)[0]);
  }
  if (words->size() > 2) return src.Fail("too many words", Shape::kAny);

  // Each word must have its own shape; joining them blindly (as readconf does) would let
  // "8000:localhost 80" through.
  for (const std::string& word : *words) {
    if (word.empty()) return src.Fail("empty word", Shape::kAny);
  }
  auto listen = SplitFields(src, (*words)[0]);
  if (!listen) return listen.take_error();
  const bool listen_ok = listen->size() == 1 ||
                         (listen->size() == 2 && !(*listen)[0].is_path && !(*listen)[1].is_path);
  if (words->size() == 1) {
    if (kind == ForwardKind::kLocal) {
      return src.Fail("missing the target (the second word)", Shape::kPortToHost);
    }
    // RemoteForward with one word is a reverse dynamic forward.
    if (!listen_ok || (*listen)[0].is_path) {
      return src.Fail("the target goes in a second word", Shape::kAny);
    }
    return ParseText(src, (*words)[0]);
  }
  if (!listen_ok) {
    return src.Fail("listen side " + Quoted((*words)[0]) + " is not [bind:]port or a socket path",
                    Shape::kAny);
  }
  auto target = SplitFields(src, (*words)[1]);
  if (!target) return target.take_error();
  const bool target_ok = (target->size() == 1 && (*target)[0].is_path) ||
                         (target->size() == 2 && !(*target)[0].is_path && !(*target)[1].is_path);
  if (!target_ok) {
    return src.Fail("target " + Quoted((*words)[1]) + " is not host:hostport or a socket path",
                    Shape::kAny);
  }
  return ParseText(src, (*words)[0] + ":" + (*words)[1]);
}

}  // namespace tether::config
