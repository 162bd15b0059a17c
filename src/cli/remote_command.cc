#include "cli/remote_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "cli/mux_client.h"
#include "control/mux_wire.h"

namespace tether::cli {
namespace {

// A command's output beyond this is an error: the callers expect a few lines.
constexpr size_t kMaxOutput = 4u << 20;

}  // namespace

Result<RemoteOutput> RunRemoteCommand(const daemon::StateDir& state, const std::string& host,
                                      const std::string& command, const std::string& input,
                                      std::chrono::milliseconds timeout) {
  auto client = MuxClient::Connect(state.MuxPath(host));
  if (!client.ok()) return client.take_error();
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return ErrnoError("remote", "pipe", errno);
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError("remote", "pipe", errno);
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return ErrnoError("remote", "pipe", errno);
  UniqueFd err_r(err[0]), err_w(err[1]);

  control::mux::NewSession request;
  request.request_id = 2;
  request.command = command;
  request.escape_char = control::mux::kNoEscapeChar;
  Status opened = client->OpenSession(request, in_r.get(), out_w.get(), err_w.get());
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  if (!opened.ok()) return opened.take_error();

  ::signal(SIGPIPE, SIG_IGN);
  ::fcntl(in_w.get(), F_SETFL, ::fcntl(in_w.get(), F_GETFL) | O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) in_w.Reset();
  RemoteOutput result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  bool timed_out = false;
  // Bounded by the deadline and the output cap.
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p[3] = {{out_open ? out_r.get() : -1, POLLIN, 0},
                   {err_open ? err_r.get() : -1, POLLIN, 0},
                   {in_w ? in_w.get() : -1, POLLOUT, 0}};
    if (::poll(p, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    if (in_w && p[2].revents != 0) {
      ssize_t n = ::write(in_w.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_w.Reset();
    }
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents == 0) continue;
      ssize_t n = ::read(i == 0 ? out_r.get() : err_r.get(), buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
    }
    if (result.out.size() + result.err.size() > kMaxOutput) break;
  }
  in_w.Reset();
  if (timed_out) return MakeError("remote", "`" + command.substr(0, 60) + "` did not end in time");
  result.exit = static_cast<int>(client->WaitForExit(nullptr));
  return result;
}

}  // namespace tether::cli
