// Typed access to the fields of a control request: the only way handlers read one.
// nlohmann's get<>() and value() throw on a field of another type (and convert a float or
// an out-of-range integer silently); these answer an Error that names the field and the
// type it must have, e.g. `"port" must be an integer in 1..65535, got a string`, which
// the control server sends back as {"ok": false, "error": ...}.
//
// A field that is absent is an error for the required accessors and std::nullopt for the
// optional ones; a field that is present with null is of the wrong type for both (a
// client that means "the default" leaves the field out). Other fields are ignored, so
// newer clients can talk to older daemons.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tether::control {

// Longest string field a request may carry: more than any forward spec, socket path or
// proxy URL needs, and short enough to quote back in an error.
inline constexpr size_t kMaxStringFieldBytes = 4096;

Result<std::string> StringField(const nlohmann::json& request, std::string_view name,
                                size_t max_bytes = kMaxStringFieldBytes);
Result<std::optional<std::string>> OptionalStringField(const nlohmann::json& request,
                                                       std::string_view name,
                                                       size_t max_bytes = kMaxStringFieldBytes);
Result<std::optional<bool>> OptionalBoolField(const nlohmann::json& request, std::string_view name);
// An integer within [min, max]: a float (even 80.0), a string of digits or a number out
// of range is refused, never truncated.
Result<std::optional<int64_t>> OptionalIntField(const nlohmann::json& request,
                                                std::string_view name, int64_t min, int64_t max);

}  // namespace tether::control
