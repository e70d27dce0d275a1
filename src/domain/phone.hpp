#pragma once
#include <optional>
#include <string>
#include <string_view>

// Phone numbers as the CRM matches them (DESIGN.md §3 item 9): E.164 through libphonenumber,
// a pure library (no I/O), so this stays domain.
namespace wachat::domain {

// `phone` as written anywhere ("(650) 555-1234", "+1 650-555-1234", "0044 20 7946 0958") in
// E.164 ("+16505551234"); a number without a country code is read in `default_region` (ISO
// 3166 alpha-2, e.g. "US"; empty: such numbers cannot be read). nullopt when it is no
// possible phone number.
std::optional<std::string> to_e164(std::string_view phone, std::string_view default_region);

// WhatsApp's ids are international numbers without the '+' ("16505551234").
std::optional<std::string> whatsapp_id_to_e164(std::string_view wa_id);

// The region (ISO 3166 alpha-2) an international number belongs to; empty when unknown.
std::string region_of(std::string_view international_number);

// The last 8 digits of `phone`: what a stored number in any format is looked up by before
// both are compared in E.164 (as migration 014's index computes it).
std::string phone_tail(std::string_view phone);

}  // namespace wachat::domain
