#include "domain/inbound_units.hpp"

namespace wachat::domain {

std::vector<inbound_unit> split_delivery(const webhook_delivery& delivery) {
  std::vector<inbound_unit> units;
  for (const auto& change : delivery.changes) {
    for (const auto& m : change.messages) {
      inbound_unit u;
      u.what = inbound_unit::kind::message;
      u.phone_number_id = change.phone_number_id;
      u.visitor_wa_id = m.from.empty() ? m.from_user_id : m.from;
      u.profile_name = std::string{profile_name_for(change, m.from, m.from_user_id)};
      u.message = m;
      units.push_back(std::move(u));
    }
    for (const auto& s : change.statuses) {
      inbound_unit u;
      u.what = inbound_unit::kind::status;
      u.phone_number_id = change.phone_number_id;
      u.visitor_wa_id = s.recipient_id.empty() ? s.recipient_user_id : s.recipient_id;
      u.status = s;
      units.push_back(std::move(u));
    }
  }
  return units;
}

std::vector<webhook_error> delivery_errors(const webhook_delivery& delivery) {
  std::vector<webhook_error> out;
  for (const auto& change : delivery.changes) {
    out.insert(out.end(), change.errors.begin(), change.errors.end());
  }
  return out;
}

std::optional<std::string> refusal_reason(const webhook_delivery& delivery,
                                          std::size_t max_items) {
  if (delivery.items_over_limit == 0) {
    return std::nullopt;
  }
  return "more than " + std::to_string(max_items) + " items in one delivery (" +
         std::to_string(delivery.items_over_limit) +
         " over the limit); not processed, the body is kept";
}

bool closes_window(const message_status& status) {
  if (status.status != "failed") {
    return false;
  }
  for (const auto& e : status.errors) {
    if (e.code == 131047) {
      return true;
    }
  }
  return false;
}

void event_progress::record(const unit_outcome& o) {
  ++answered;
  if (o.unroutable) {
    unroutable_ids.insert(*o.unroutable);
    return;
  }
  if (o.stored) {
    return;
  }
  if (o.retryable) {
    ++retryable_failures;
  } else {
    errors.push_back(o.error);
  }
}

event_verdict event_progress::verdict() const {
  // A passing failure (database gone mid-way) wins: the whole row is tried again, and what was
  // stored already is recognised by wamid and changes nothing the second time.
  if (retryable_failures > 0) {
    return {"pending", "will retry: a unit could not be stored for now"};
  }
  if (!errors.empty()) {
    return {"failed", std::to_string(errors.size()) + " unit(s) failed; first: " + errors.front()};
  }
  if (!unroutable_ids.empty()) {
    std::string ids;
    for (const auto& id : unroutable_ids) {
      ids += (ids.empty() ? "" : ", ") + id;
    }
    return {"unroutable", "no site has phone_number_id " + ids};
  }
  // A processed row still says what Meta reported and what was skipped, for the operator.
  std::string notes;
  for (const auto& e : meta_errors) {
    notes += (notes.empty() ? "Meta reported: " : "; ") + std::to_string(e.code) + " " +
             (e.title.empty() ? e.message : e.title);
    if (!e.details.empty()) {
      notes += " (" + e.details + ")";
    }
  }
  if (!problems.empty()) {
    notes += (notes.empty() ? "" : "; ") + std::to_string(problems.size()) +
             " item(s) skipped; first: " + problems.front().where + ": " + problems.front().reason;
  }
  if (notes.empty()) {
    return {"processed", std::nullopt};
  }
  // Parts of the delivery that could not be used are not hidden behind `processed`.
  return {problems.empty() ? "processed" : "partial", notes};
}

}  // namespace wachat::domain
