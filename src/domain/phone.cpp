#include "domain/phone.hpp"

#include <phonenumbers/phonenumberutil.h>

namespace wachat::domain {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

// Parsing a whole CRM's worth of strings: anything absurd is refused before libphonenumber.
constexpr std::size_t max_phone_text = 64;

}  // namespace

std::optional<std::string> to_e164(std::string_view phone, std::string_view default_region) {
  if (phone.empty() || phone.size() > max_phone_text) {
    return std::nullopt;
  }
  const auto* util = PhoneNumberUtil::GetInstance();
  PhoneNumber n;
  std::string region = default_region.empty() ? "ZZ" : std::string{default_region};
  if (util->Parse(std::string{phone}, region, &n) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return std::nullopt;
  }
  if (!util->IsPossibleNumber(n)) {
    return std::nullopt;
  }
  std::string out;
  util->Format(n, PhoneNumberUtil::E164, &out);
  return out;
}

std::optional<std::string> whatsapp_id_to_e164(std::string_view wa_id) {
  if (wa_id.empty() || wa_id.front() == '+') {
    return to_e164(wa_id, "");
  }
  return to_e164("+" + std::string{wa_id}, "");
}

std::string region_of(std::string_view international_number) {
  if (international_number.empty() || international_number.size() > max_phone_text) {
    return {};
  }
  const auto* util = PhoneNumberUtil::GetInstance();
  PhoneNumber n;
  if (util->Parse(std::string{international_number}, "ZZ", &n) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return {};
  }
  std::string region;
  util->GetRegionCodeForNumber(n, &region);
  return region == "ZZ" ? std::string{} : region;
}

std::string phone_tail(std::string_view phone) {
  std::string digits;
  for (char c : phone) {
    if (c >= '0' && c <= '9') {
      digits += c;
    }
  }
  return digits.size() <= 8 ? digits : digits.substr(digits.size() - 8);
}

}  // namespace wachat::domain
