import { VARIANTS } from '@/gql/variants'

/**
 * The variants of a document family to try, in order, for a user holding these roles: first the richest variant
 * that one of the roles' checked-in schemas validates (scripts/codegen.mjs), then the rest, richest first. A
 * policy changed since the SDL was exported (a field revoked from a role) or a custom role is met at run time by
 * falling back on GRAPHQL_VALIDATION_FAILED (api/client.ts runVariant), never by introspection.
 */
export function variantOrder(family: string, roles: readonly string[], variants = VARIANTS): string[] {
  const entry = variants[family]
  if (!entry) throw new Error(`unknown document family ${family}`)
  const chosen = entry.variants.filter((name) => roles.some((role) => entry.byRole[role] === name))
  const first = chosen[0]
  return first ? [first, ...entry.variants.filter((name) => name !== first)] : [...entry.variants]
}

/** Whether any of these roles' schemas has the family's root field (a page or a dashboard card can be shown). */
export function familyAvailable(family: string, roles: readonly string[], variants = VARIANTS): boolean {
  const entry = variants[family]
  return !!entry && roles.some((role) => role in entry.byRole)
}
