#include "control/json_fields.h"

namespace tether::control {
namespace {

using Json = nlohmann::json;

// "a string", "an object", ...: what the client sent instead, never its value (a string
// may be kilobytes long).
std::string Described(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return value.dump();  // short, and the clearest answer for an out-of-range number
    default:
      return "a value of another type";
  }
}

Error WrongType(std::string_view name, const std::string& expected, const Json& got) {
  return MakeError("control",
                   "\"" + std::string(name) + "\" must be " + expected + ", got " + Described(got));
}

// The field, or null when absent (request is an object: HandleLine checked).
const Json* Find(const Json& request, std::string_view name) {
  auto it = request.find(name);
  return it == request.end() ? nullptr : &*it;
}

}  // namespace

Result<std::optional<std::string>> OptionalStringField(const Json& request, std::string_view name,
                                                       size_t max_bytes) {
  const Json* field = Find(request, name);
  if (field == nullptr) return std::optional<std::string>();
  if (!field->is_string()) return WrongType(name, "a string", *field);
  const auto& text = field->get_ref<const std::string&>();
  if (text.size() > max_bytes) {
    return MakeError("control", "\"" + std::string(name) + "\" is " + std::to_string(text.size()) +
                                    " bytes long; at most " + std::to_string(max_bytes));
  }
  return std::optional<std::string>(text);
}

Result<std::string> StringField(const Json& request, std::string_view name, size_t max_bytes) {
  auto field = OptionalStringField(request, name, max_bytes);
  if (!field.ok()) return field.take_error();
  if (!field->has_value()) {
    return MakeError("control", "\"" + std::string(name) + "\" is missing: it must be a string");
  }
  return std::move(**field);
}

Result<std::optional<bool>> OptionalBoolField(const Json& request, std::string_view name) {
  const Json* field = Find(request, name);
  if (field == nullptr) return std::optional<bool>();
  if (!field->is_boolean()) return WrongType(name, "true or false", *field);
  return std::optional<bool>(field->get<bool>());
}

Result<std::optional<int64_t>> OptionalIntField(const Json& request, std::string_view name,
                                                int64_t min, int64_t max) {
  const Json* field = Find(request, name);
  if (field == nullptr) return std::optional<int64_t>();
  const std::string expected = "an integer in " + std::to_string(min) + ".." + std::to_string(max);
  if (!field->is_number_integer()) return WrongType(name, expected, *field);
  // An unsigned one may not fit int64_t: compare it as what it is.
  if (field->is_number_unsigned()) {
    auto u = field->get<uint64_t>();
    if (max < 0 || u > static_cast<uint64_t>(max)) return WrongType(name, expected, *field);
    if (static_cast<int64_t>(u) < min) return WrongType(name, expected, *field);
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  auto v = field->get<int64_t>();
  if (v < min || v > max) return WrongType(name, expected, *field);
  return std::optional<int64_t>(v);
}

}  // namespace tether::control
