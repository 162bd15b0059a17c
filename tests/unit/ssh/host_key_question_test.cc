// StrictHostKeyChecking=ask's question, through the Prompter seam: a scripted person.
#include <gtest/gtest.h>

#include <cctype>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "ssh/host_key.h"
#include "ssh/prompter.h"

namespace tether::ssh {
namespace {

constexpr char kName[] = "[gpu.example.com]:2222";
constexpr char kType[] = "ssh-ed25519";
constexpr char kFingerprint[] = "SHA256:q0Jv6cC0ZbN9sQm1p4d3x1m8pPcz8yVJ5bq2x7mZk3E";

// Answers from a script, one per question; records every question and every line told.
// An empty optional is the end of input (Ctrl-D). Past the script it answers "yes", so a
// question asked once too often shows as an accepted key.
class ScriptedPerson : public Prompter {
 public:
  explicit ScriptedPerson(std::vector<std::optional<std::string>> answers)
      : answers_(answers.begin(), answers.end()) {}
  bool CanPrompt() const override { return true; }
  std::optional<std::string> Ask(const std::string& prompt, bool echo) override {
    questions.push_back(prompt);
    echoed.push_back(echo);
    if (answers_.empty()) return std::string("yes");
    auto a = answers_.front();
    answers_.pop_front();
    return a;
  }
  void Tell(const std::string& text) override { told.push_back(text); }

  std::vector<std::string> questions;
  std::vector<bool> echoed;
  std::vector<std::string> told;

 private:
  std::deque<std::optional<std::string>> answers_;
};

Status Ask(ScriptedPerson& person) { return AskAboutHostKey(person, kName, kType, kFingerprint); }

TEST(HostKeyQuestion, ShowsTheKeyAndAsksOnceWithTheAnswerEchoed) {
  ScriptedPerson person({"yes"});
  EXPECT_TRUE(Ask(person).ok());
  ASSERT_EQ(person.questions.size(), 1u);
  EXPECT_EQ(person.questions[0],
            "Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
  EXPECT_TRUE(person.echoed[0]);
  ASSERT_EQ(person.told.size(), 2u);
  EXPECT_NE(person.told[0].find(kName), std::string::npos) << person.told[0];
  EXPECT_NE(person.told[1].find(std::string(kType) + " key fingerprint is " + kFingerprint),
            std::string::npos)
      << person.told[1];
}

TEST(HostKeyQuestion, NoRefusesAtOnceAndSaysNothingWasWritten) {
  ScriptedPerson person({"no"});
  Status s = Ask(person);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(person.questions.size(), 1u) << "asked again after a clear no";
  EXPECT_EQ(s.error().step, "host key");
  EXPECT_NE(s.error().message.find(std::string(kName) + " not accepted"), std::string::npos)
      << s.error().ToString();
  EXPECT_NE(s.error().hint.find("nothing was written"), std::string::npos) << s.error().ToString();
}

TEST(HostKeyQuestion, RefusesWhatSshRefuses) {
  // As ssh: "no" in any case and with spaces around it, an empty line, and the end of input.
  const std::vector<std::optional<std::string>> refusals = {"no", "NO",  "No",        "  no\t",
                                                            "",   "   ", std::nullopt};
  for (const auto& answer : refusals) {
    ScriptedPerson person({answer});
    EXPECT_FALSE(Ask(person).ok()) << "answer: '" << answer.value_or("<end of input>") << "'";
    EXPECT_EQ(person.questions.size(), 1u)
        << "answer: '" << answer.value_or("<end of input>") << "'";
  }
}

TEST(HostKeyQuestion, AcceptsYesInAnyCaseAndTheExactFingerprint) {
  const std::vector<std::string> acceptances = {
      "yes", "YES", "Yes", " yes ", kFingerprint, std::string(" ") + kFingerprint};
  for (const auto& answer : acceptances) {
    ScriptedPerson person({answer});
    EXPECT_TRUE(Ask(person).ok()) << "answer: '" << answer << "'";
    EXPECT_EQ(person.questions.size(), 1u) << "answer: '" << answer << "'";
  }
}

TEST(HostKeyQuestion, AnotherFingerprintIsNotAnAcceptance) {
  // A fingerprint is compared exactly: one letter off, or in another case, is unclear.
  std::string lower = kFingerprint;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string off = kFingerprint;
  off.back() = off.back() == 'E' ? 'F' : 'E';
  ScriptedPerson person({off, lower, "SHA256:"});
  EXPECT_FALSE(Ask(person).ok());
  EXPECT_EQ(person.questions.size(), 3u);
}

TEST(HostKeyQuestion, ThreeUnclearAnswersRefuseWithoutAFourthQuestion) {
  // The script would answer "yes" to a fourth question: asking one more time accepts.
  ScriptedPerson person({"y", "maybe", "sure"});
  Status s = Ask(person);
  ASSERT_FALSE(s.ok()) << "accepted after " << person.questions.size() << " questions";
  ASSERT_EQ(person.questions.size(), static_cast<size_t>(kHostKeyQuestions));
  EXPECT_EQ(kHostKeyQuestions, 3);
  // After an unclear answer the question says what to type.
  EXPECT_EQ(person.questions[1], "Please type 'yes', 'no' or the fingerprint: ");
  EXPECT_EQ(person.questions[2], "Please type 'yes', 'no' or the fingerprint: ");
  EXPECT_NE(s.error().message.find("no clear answer in 3 tries"), std::string::npos)
      << s.error().ToString();
}

TEST(HostKeyQuestion, AClearAnswerOnTheLastTryCounts) {
  ScriptedPerson yes_last({"y", "maybe", "yes"});
  EXPECT_TRUE(Ask(yes_last).ok());
  EXPECT_EQ(yes_last.questions.size(), 3u);
  ScriptedPerson no_second({"y", "no", "yes"});
  EXPECT_FALSE(Ask(no_second).ok());
  EXPECT_EQ(no_second.questions.size(), 2u) << "asked again after a clear no";
}

}  // namespace
}  // namespace tether::ssh
