"""LeadSquared API facts shared by the client and the emulator (see shared/reference)."""

DELETE_PATH = "/v2/ProspectActivity.svc/DeleteActivities"
SETTING_PATH = "/v2/ProspectActivity.svc/CustomActivity/GetActivitySetting"
RETRIEVE_PATH = "/v2/ProspectActivity.svc/Retrieve"
QUEUED_MESSAGE = "Your request for delete activities has been queued."
ACCESS_KEY_HEADER = "x-LSQ-AccessKey"
SECRET_KEY_HEADER = "x-LSQ-SecretKey"  # noqa: S105 - a header name
USER_PATH = "/v2/Authentication.svc/UserByAccessKey.Get"  # answers on every regional host
LIST_PATH = "/v2/ProspectActivity.svc/CustomActivity/RetrieveByActivityEvent"
