#include "daemon/forwards_record.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tether::daemon {
namespace {

namespace fs = std::filesystem;

ForwardsRecord Sample() {
  ForwardsRecord r;
  r.host = "gpu";
  r.pid = 4242;
  r.started = 1764742834;
  r.updated = 1764742900;
  r.forwards = {
      {"local", "8000:localhost:8000", "-L 8000:localhost:8000", "", 8000, "", "localhost:8000"},
      {"dynamic", "127.0.0.1:1080", "-D 127.0.0.1:1080", "127.0.0.1", 1080, "", "socks"},
      {"remote", "9000:localhost:3000", "-R 9000:localhost:3000", "", 9000, "", "localhost:3000"},
      {"local", "/tmp/a.sock:/run/b.sock", "-L /tmp/a.sock:/run/b.sock", "", 0, "/tmp/a.sock",
       "/run/b.sock"},
      {"proxy", "127.0.0.1:10808", "-R 127.0.0.1:10808", "127.0.0.1", 10808, "", "laptop: direct"},
  };
  return r;
}

class ForwardsRecordFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-record-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/gpu.forwards";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void WriteRaw(const std::string& text) { std::ofstream(path_, std::ios::binary) << text; }
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    return out;
  }
  static time_t MtimeOf(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_mtime : 0;
  }
  static void SetMtime(const std::string& path, time_t t) {
    timespec times[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  std::string dir_;
  std::string path_;
};

TEST(ForwardsRecordText, RoundTripsEveryKindOfForward) {
  ForwardsRecord r = Sample();
  auto back = ParseForwardsRecord(FormatForwardsRecord(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, r);
}

TEST(ForwardsRecordText, EveryTruncationIsAnUnreadableRecordNotACrash) {
  const std::string text = FormatForwardsRecord(Sample());
  // The trailing newline aside, no proper prefix is a whole JSON object.
  for (size_t n = 0; n + 1 < text.size(); ++n) {
    auto r = ParseForwardsRecord(std::string_view(text).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes was taken as a record";
    EXPECT_EQ(r.error().message.rfind("unreadable record: ", 0), 0u) << r.error().message;
  }
}

struct GarbageCase {
  const char* name;
  std::string text;
  const char* why;  // part of the message
};

TEST(ForwardsRecordText, GarbageIsRefusedWithTheReason) {
  const std::string ok_forward =
      R"({"kind":"local","spec":"8000:h:80","flag":"-L 8000:h:80","port":8000})";
  auto with = [&](const std::string& fields) {
    return R"({"version":1,"host":"gpu","pid":7,"started":1,"updated":2)" + fields + "}";
  };
  const std::vector<GarbageCase> cases = {
      {"empty", "", "not JSON"},
      {"not JSON", "hello", "not JSON"},
      {"binary", std::string("\x00\xff\xfe{\x01", 5), "not JSON"},
      {"invalid UTF-8 in a string", with(",\"forwards\":[]").replace(21, 3, "\xff\xfe\xfd"),
       "not JSON"},
      {"an array", "[1,2,3]", "not a JSON object"},
      {"null", "null", "not a JSON object"},
      {"no version", R"({"pid":1})", "no version"},
      {"a newer version", R"({"version":2,"pid":1})", "version 2"},
      {"version as text", R"({"version":"1"})", "no version"},
      {"no pid", R"({"version":1,"started":1,"updated":1,"forwards":[]})", "pid"},
      {"pid as text", R"({"version":1,"pid":"abc","started":1,"updated":1,"forwards":[]})", "pid"},
      {"pid zero", R"({"version":1,"pid":0,"started":1,"updated":1,"forwards":[]})", "pid"},
      {"pid negative", R"({"version":1,"pid":-5,"started":1,"updated":1,"forwards":[]})", "pid"},
      {"pid past pid_t",
       R"({"version":1,"pid":18446744073709551615,"started":1,"updated":1,"forwards":[]})", "pid"},
      {"pid a float", R"({"version":1,"pid":1e30,"started":1,"updated":1,"forwards":[]})", "pid"},
      {"host a number", R"({"version":1,"host":5,"pid":1})", "host"},
      {"started as text", R"({"version":1,"pid":1,"started":"x","updated":1,"forwards":[]})",
       "not a time"},
      {"started negative", R"({"version":1,"pid":1,"started":-1,"updated":1,"forwards":[]})",
       "not a time"},
      {"no forwards", with(""), "no list of forwards"},
      {"forwards an object", with(R"(,"forwards":{})"), "no list of forwards"},
      {"a forward not an object", with(R"(,"forwards":[1])"), "forward 1: not an object"},
      {"unknown kind", with(R"(,"forwards":[{"kind":"evil","spec":"1","port":1}])"),
       "unknown kind"},
      {"kind a number", with(R"(,"forwards":[{"kind":1,"spec":"1","port":1}])"),
       "kind is not a string"},
      {"no spec", with(R"(,"forwards":[{"kind":"local","port":1}])"), "no spec"},
      {"port too large", with(R"(,"forwards":[{"kind":"local","spec":"x","port":70000}])"),
       "port out of range"},
      {"port negative", with(R"(,"forwards":[{"kind":"local","spec":"x","port":-1}])"),
       "port out of range"},
      {"port a float", with(R"(,"forwards":[{"kind":"local","spec":"x","port":1.5}])"),
       "port out of range"},
      {"no port nor path", with(R"(,"forwards":[{"kind":"local","spec":"x"}])"),
       "neither a port nor a path"},
      {"second forward bad", with(",\"forwards\":[" + ok_forward + ",{\"kind\":\"local\"}]"),
       "forward 2"},
      {"a huge string",
       with(R"(,"forwards":[{"kind":"local","spec":")" + std::string(5000, 'a') +
            R"(","port":1}])"),
       "spec is not a string"},
      {"too large", std::string(kMaxForwardsRecordBytes + 1, ' '), "larger than 1 MiB"},
      {"deeply nested", std::string(100000, '[') + std::string(100000, ']'), "not a JSON object"},
  };
  for (const auto& c : cases) {
    auto r = ParseForwardsRecord(c.text);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().message.rfind("unreadable record: ", 0), 0u) << c.name;
    EXPECT_NE(r.error().message.find(c.why), std::string::npos)
        << c.name << ": " << r.error().message;
  }
}

TEST(ForwardsRecordText, UnknownFieldsAreIgnored) {
  auto r = ParseForwardsRecord(
      R"({"version":1,"pid":9,"started":1,"updated":2,"later":{"a":[1]},)"
      R"("forwards":[{"kind":"local","spec":"8000:h:80","port":8000,"extra":true}]})");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->forwards.size(), 1u);
  EXPECT_EQ(r->forwards[0].port, 8000);
}

TEST_F(ForwardsRecordFileTest, WritesOwnerOnlyAtomicallyAndReadsItBack) {
  ForwardsRecord r = Sample();
  ASSERT_TRUE(WriteForwardsRecord(path_, r).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Files(), std::vector<std::string>{"gpu.forwards"}) << "a temporary file was left";
  SetMtime(path_, r.updated);
  auto back = ReadForwardsRecord(path_);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(**back, r);

  // Rewritten with fewer forwards: the new text, whole.
  r.forwards.resize(1);
  ASSERT_TRUE(WriteForwardsRecord(path_, r).ok());
  SetMtime(path_, r.updated);
  back = ReadForwardsRecord(path_);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(**back, r);
  EXPECT_EQ(Files().size(), 1u);
}

TEST_F(ForwardsRecordFileTest, NoFileIsNoRecord) {
  auto r = ReadForwardsRecord(path_);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(r->has_value());
}

TEST_F(ForwardsRecordFileTest, ADamagedFileIsAnUnreadableRecordNamingThePath) {
  std::string text = FormatForwardsRecord(Sample());
  WriteRaw(text.substr(0, text.size() / 2));
  auto r = ReadForwardsRecord(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("unreadable record " + path_ + ": ", 0), 0u)
      << r.error().message;
}

TEST_F(ForwardsRecordFileTest, AFifoALinkOrAHugeFileIsRefusedWithoutReadingIt) {
  ASSERT_EQ(::mkfifo(path_.c_str(), 0600), 0);  // a reader would wait forever on it
  auto r = ReadForwardsRecord(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos);
  ::unlink(path_.c_str());

  ASSERT_TRUE(WriteForwardsRecord(dir_ + "/other", Sample()).ok());
  ASSERT_EQ(::symlink((dir_ + "/other").c_str(), path_.c_str()), 0);
  r = ReadForwardsRecord(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("unreadable record", 0), 0u);
  ::unlink(path_.c_str());

  ASSERT_EQ(::truncate((dir_ + "/other").c_str(), 0), 0);
  ASSERT_EQ(::rename((dir_ + "/other").c_str(), path_.c_str()), 0);
  ASSERT_EQ(::truncate(path_.c_str(), kMaxForwardsRecordBytes + 1), 0);
  r = ReadForwardsRecord(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larger than 1 MiB"), std::string::npos);
}

TEST_F(ForwardsRecordFileTest, LastSeenIsTheLaterOfTheTextAndTheHeartbeat) {
  ForwardsRecord r = Sample();
  ASSERT_TRUE(WriteForwardsRecord(path_, r).ok());
  SetMtime(path_, r.updated + 600);
  auto back = ReadForwardsRecord(path_);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->updated, r.updated + 600);
}

TEST_F(ForwardsRecordFileTest, TheRecorderWritesOnChangesTouchesOnTheHeartbeatAndRemoves) {
  ForwardsRecorder recorder(path_, "gpu");
  recorder.Update(Sample().forwards);
  EXPECT_TRUE(Files().empty()) << "written before the daemon started";

  const auto started = std::chrono::system_clock::now();
  recorder.Start(4242, started, Sample().forwards);
  auto r = ReadForwardsRecord(path_);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->pid, 4242);
  EXPECT_EQ((*r)->host, "gpu");
  EXPECT_EQ((*r)->forwards.size(), Sample().forwards.size());

  recorder.Update({Sample().forwards[0]});
  r = ReadForwardsRecord(path_);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->forwards.size(), 1u);

  // The heartbeat moves the mtime, and only once it is due.
  SetMtime(path_, 1000);
  const auto now = std::chrono::steady_clock::now();
  recorder.Tick(now);
  EXPECT_EQ(MtimeOf(path_), 1000) << "touched before the heartbeat was due";
  recorder.Tick(now + kForwardsRecordHeartbeat + std::chrono::seconds(1));
  EXPECT_GT(MtimeOf(path_), 1000);

  // A record someone removed comes back at the next heartbeat.
  ::unlink(path_.c_str());
  recorder.Tick(now + 2 * kForwardsRecordHeartbeat + std::chrono::seconds(2));
  r = ReadForwardsRecord(path_);
  ASSERT_TRUE(r.ok() && r->has_value());

  recorder.Remove();
  EXPECT_TRUE(Files().empty());
  recorder.Update(Sample().forwards);
  recorder.Tick(now + 10 * kForwardsRecordHeartbeat);
  EXPECT_TRUE(Files().empty()) << "written after a clean stop";
}

}  // namespace
}  // namespace tether::daemon
