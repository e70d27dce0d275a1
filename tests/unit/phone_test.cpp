// Phone numbers for CRM matching (domain/phone): E.164 through libphonenumber.
#include <catch2/catch.hpp>

#include "domain/phone.hpp"

using namespace wachat::domain;

TEST_CASE("numbers written in local or international formats read as E.164") {
  CHECK(to_e164("(650) 555-1234", "US") == "+16505551234");
  CHECK(to_e164("650.555.1234", "US") == "+16505551234");
  CHECK(to_e164("+1 650-555-1234", "") == "+16505551234");
  CHECK(to_e164("+1 650-555-1234", "GB") == "+16505551234");
  CHECK(to_e164("020 7946 0958", "GB") == "+442079460958");
  CHECK(to_e164("+44 (0)20 7946 0958", "US") == "+442079460958");
  CHECK(to_e164("0971 234567", "ZM") == "+260971234567");
}

TEST_CASE("what cannot be a phone number is refused") {
  CHECK_FALSE(to_e164("(650) 555-1234", ""));  // no country, and none to assume
  CHECK_FALSE(to_e164("call me", "US"));
  CHECK_FALSE(to_e164("12", "US"));
  CHECK_FALSE(to_e164("", "US"));
  CHECK_FALSE(to_e164(std::string(500, '1'), "US"));
}

TEST_CASE("WhatsApp ids are international numbers without the plus") {
  CHECK(whatsapp_id_to_e164("16505551234") == "+16505551234");
  CHECK(whatsapp_id_to_e164("260971234567") == "+260971234567");
  CHECK_FALSE(whatsapp_id_to_e164("US.13491208655302741918"));
  CHECK(region_of("+16505551234") == "US");
  CHECK(region_of("+442079460958") == "GB");
  CHECK(region_of("+1 555-0100").empty());
  CHECK(region_of("nonsense").empty());
}

TEST_CASE("a number's tail is its last 8 digits, whatever the format") {
  CHECK(phone_tail("+1 (650) 555-1234") == "05551234");
  CHECK(phone_tail("+16505551234") == "05551234");
  CHECK(phone_tail("12-34") == "1234");
}
