#include "cli/port_owner.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/fs.h"

namespace tether::cli {
namespace {

constexpr const char* kTcpListen = "0A";     // TCP_LISTEN in /proc/net/tcp's st column
constexpr size_t kMaxCommandLine = 1 << 20;  // more than a process's arguments can hold

// Inodes of sockets listening on `port` in one /proc/net table.
std::vector<std::string> ListeningInodes(const std::string& table, uint16_t port) {
  std::vector<std::string> inodes;
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  // Bounded by the table's size.
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
    fields >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode;
    size_t colon = local.rfind(':');
    if (colon == std::string::npos || st != kTcpListen) continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inodes.push_back(inode);
  }
  return inodes;
}

}  // namespace

std::vector<PortOwner> FindPortOwners(uint16_t port) {
  std::vector<PortOwner> owners;
#ifdef __linux__
  std::vector<std::string> inodes = ListeningInodes("/proc/net/tcp", port);
  for (auto& i : ListeningInodes("/proc/net/tcp6", port)) inodes.push_back(i);
  if (inodes.empty()) return owners;
  size_t found_sockets = 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return {PortOwner{}};
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::string fd_dir = "/proc/" + std::string(e->d_name) + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) continue;  // another user's process
    bool found = false;
    while (dirent* f = ::readdir(fds)) {
      char target[64] = {0};
      std::string link = fd_dir + "/" + f->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      for (const auto& inode : inodes) {
        if (t == "socket:[" + inode + "]") {
          found = true;
          ++found_sockets;
        }
      }
    }
    ::closedir(fds);
    if (found) {
      PortOwner owner;
      owner.pid = pid;
      std::string all;
      ReadFile("/proc/" + std::string(e->d_name) + "/cmdline", &all, kMaxCommandLine);
      for (char& c : all) {
        if (c == '\0') c = ' ';
      }
      while (!all.empty() && all.back() == ' ') all.pop_back();
      owner.command = all;
      owners.push_back(owner);
    }
  }
  ::closedir(proc);
  if (found_sockets < inodes.size()) owners.push_back(PortOwner{});  // not all visible
#else
  (void)port;
#endif
  return owners;
}

}  // namespace tether::cli
