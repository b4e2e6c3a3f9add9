"""LeadSquared API facts shared by the client and the emulator (see shared/reference)."""

from __future__ import annotations

from typing import Any

DELETE_PATH = "/v2/ProspectActivity.svc/DeleteActivities"
SETTING_PATH = "/v2/ProspectActivity.svc/CustomActivity/GetActivitySetting"
RETRIEVE_PATH = "/v2/ProspectActivity.svc/Retrieve"
QUEUED_MESSAGE = "Your request for delete activities has been queued."
ACCESS_KEY_HEADER = "x-LSQ-AccessKey"
SECRET_KEY_HEADER = "x-LSQ-SecretKey"  # noqa: S105 - a header name
USER_PATH = "/v2/Authentication.svc/UserByAccessKey.Get"  # answers on every regional host
LIST_PATH = "/v2/ProspectActivity.svc/CustomActivity/RetrieveByActivityEvent"
# Posting activities back (the reference's "Posting activities back"): one, or up to 25 on the
# bulk add's own, stricter limit.
CREATE_PATH = "/v2/ProspectActivity.svc/Create"
BULK_ADD_PATH = "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadId"
BULK_MAX_ACTIVITIES = 25


def activity_date(activity: dict[str, Any]) -> str:
    """The date a delete's FromDate/ToDate select an activity by: the ActivityDateTime it was
    posted with, when it has one, else its CreatedOn (every activity not posted back was
    created at its date). A restore posts the original date as ActivityDateTime, so its
    CreatedOn is the moment of the post: windows must be read on this date, not CreatedOn."""
    value = activity.get("ActivityDateTime") or activity.get("CreatedOn")
    return "" if value is None else str(value).strip()
