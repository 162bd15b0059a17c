#include "agent/token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <thread>

#include "test_util.h"

namespace tether::agent {
namespace {

using testing::TempDir;
using testing::WriteFile;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bool IsLowerHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(Token, GeneratedTokensAre256RandomBits) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto t = GenerateToken();
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->size(), 64u);
    EXPECT_TRUE(IsLowerHex(*t)) << *t;
    seen.insert(*t);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Token, FirstStartCreatesAPrivateFileInAPrivateDirectory) {
  TempDir dir;
  const std::string path = dir / "config/tether/agent-token";
  auto token = LoadOrCreateToken(path);
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  EXPECT_EQ(token->size(), 64u);
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(dir / "config/tether"), 0700u);
  EXPECT_EQ(ModeOf(dir / "config"), 0700u);
  // No temporary file is left behind.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "config/tether")) {
    EXPECT_EQ(entry.path().filename(), "agent-token");
    ++files;
  }
  EXPECT_EQ(files, 1u);
  // The next start reads the same token.
  auto again = LoadOrCreateToken(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *token);
}

TEST(Token, ModeIs0600WhateverTheUmask) {
  TempDir dir;
  mode_t old = ::umask(0);
  auto token = LoadOrCreateToken(dir / "t");
  ::umask(old);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(ModeOf(dir / "t"), 0600u);
}

TEST(Token, ConcurrentFirstStartsAgreeOnOneToken) {
  TempDir dir;
  const std::string path = dir / "agent-token";
  std::vector<std::string> tokens(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < tokens.size(); ++i) {
    threads.emplace_back([&, i] {
      auto t = LoadOrCreateToken(path);
      tokens[i] = t.ok() ? *t : "error: " + t.error().ToString();
    });
  }
  for (auto& t : threads) t.join();
  // Every start got a token (none failed), and all of them the same one.
  ASSERT_EQ(tokens[0].size(), 64u) << tokens[0];
  for (const std::string& t : tokens) EXPECT_EQ(t, tokens[0]);
}

TEST(Token, AcceptsAnExistingTokenWithoutTheNewline) {
  TempDir dir;
  const std::string token(64, 'a');
  WriteFile(dir / "t", token);
  ::chmod((dir / "t").c_str(), 0600);
  auto got = LoadOrCreateToken(dir / "t");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(*got, token);
}

TEST(Token, RefusesAFileOthersMayRead) {
  TempDir dir;
  WriteFile(dir / "t", std::string(64, 'a') + "\n");
  ::chmod((dir / "t").c_str(), 0644);
  auto got = LoadOrCreateToken(dir / "t");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("mode 0644"), std::string::npos) << got.error().message;
  EXPECT_EQ(got.error().hint, "chmod 600 " + (dir / "t"));
  // And never says what the token is.
  EXPECT_EQ(got.error().ToString().find(std::string(64, 'a')), std::string::npos);
}

TEST(Token, RefusesAFileThatIsNotAToken) {
  TempDir dir;
  for (const std::string& content :
       {std::string("hunter2\n"), std::string(63, 'a'), std::string(65, 'a'),
        std::string(63, 'a') + "g", std::string(1000, 'a')}) {
    WriteFile(dir / "t", content);
    ::chmod((dir / "t").c_str(), 0600);
    auto got = LoadOrCreateToken(dir / "t");
    ASSERT_FALSE(got.ok()) << content;
    EXPECT_NE(got.error().hint.find("remove it"), std::string::npos);
    // Not overwritten: the user's file is still there as it was.
    EXPECT_EQ(testing::ReadPath(dir / "t").size(), content.size());
  }
}

TEST(Token, RefusesASymlink) {
  TempDir dir;
  WriteFile(dir / "real", std::string(64, 'b'));
  ::chmod((dir / "real").c_str(), 0600);
  ASSERT_EQ(::symlink((dir / "real").c_str(), (dir / "link").c_str()), 0);
  EXPECT_FALSE(LoadOrCreateToken(dir / "link").ok());
}

TEST(Token, MatchingIsExact) {
  const std::string token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(TokenMatches(token, token));
  std::string wrong = token;
  wrong.back() = '0';
  EXPECT_FALSE(TokenMatches(token, wrong));
  EXPECT_FALSE(TokenMatches(token, token.substr(0, 63)));
  EXPECT_FALSE(TokenMatches(token, token + "0"));
  EXPECT_FALSE(TokenMatches(token, ""));
  EXPECT_FALSE(TokenMatches("", ""));  // an agent without a token accepts nobody
}

TEST(Token, BearerHeaders) {
  struct Case {
    const char* header;
    const char* credentials;
  };
  for (const Case& c :
       {Case{"Bearer abc", "abc"}, Case{"bearer abc", "abc"}, Case{"BEARER   abc  ", "abc"},
        Case{"Bearer\tabc", "abc"}, Case{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", ""}, Case{"Bearer", ""},
        Case{"Bearer ", ""}, Case{"Bearerabc", ""}, Case{"", ""}, Case{"abc", ""}}) {
    EXPECT_EQ(BearerCredentials(c.header), c.credentials) << c.header;
  }
}

}  // namespace
}  // namespace tether::agent
