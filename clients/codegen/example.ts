// How a client uses the generated types (type-checked by `npm run check`): each operation's variables and result
// are typed from the role's SDL, and the mini-program's subscription is there like its queries.
import type { ChiefPatientsQuery, ChiefPatientsQueryVariables } from "./generated/chief";
import { ChiefPatientsDocument } from "./generated/chief";
import type { AdminAssignRolesMutationVariables } from "./generated/admin";
import type { MessageAddedSubscription, MyRecordQuery, WechatLoginMutationVariables } from "./generated/mini-program";
import { MessageAddedDocument } from "./generated/mini-program";

const page: ChiefPatientsQueryVariables = { first: 100 }; // at most 100 a page
const maskedIdNumber = (result: ChiefPatientsQuery): (string | null | undefined)[] =>
  result.patients.edges.map((edge) => edge.node.idNumber);
const assign: AdminAssignRolesMutationVariables = { userId: "VXNlcjo0", roleKeys: ["physician"] };
const login: WechatLoginMutationVariables = { code: "demo-patient" };
const text = (event: MessageAddedSubscription): string => event.messageAdded.text;
const name = (record: MyRecordQuery): string | undefined => record.myRecord?.name;

export const examples = { page, maskedIdNumber, assign, login, text, name, ChiefPatientsDocument, MessageAddedDocument };
