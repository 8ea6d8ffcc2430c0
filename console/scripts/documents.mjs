// The document check, separate from file access so that Vitest can drive it (scripts/documents.test.ts).

/** @param {string} coordinate `Query.patient` */
function hasCoordinate(schema, coordinate) {
  const [typeName, fieldName] = coordinate.split('.')
  const type = typeName === 'Query' ? schema.getQueryType() : typeName === 'Mutation' ? schema.getMutationType() : schema.getType(typeName)
  if (!type || typeof type.getFields !== 'function') return false
  return fieldName in type.getFields()
}

/**
 * @param {{files: {name: string, text: string}[], schemas: Record<string, import('graphql').GraphQLSchema>,
 *   validate: typeof import('graphql').validate, parse: typeof import('graphql').parse}} input
 */
export function analyse({ files, schemas, validate, parse }) {
  const problems = []
  const pending = []
  const families = []
  let checked = 0
  const seenOperations = new Set()
  for (const { name, text } of files) {
    const family = name.replace(/\.graphql$/, '')
    const match = /^#\s*requires:\s*(.+)$/m.exec(text)
    if (!match) {
      problems.push(`${name}: no "# requires: Type.field" line naming the page's root field`)
      continue
    }
    // One coordinate, or several (the page's menu entry needs them all): `Query.roles Query.permissionCatalog`.
    const requires = match[1].trim().split(/[\s,]+/).join(' ')
    let document
    try {
      document = parse(text)
    } catch (error) {
      problems.push(`${name}: ${error.message}`)
      continue
    }
    const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition')
    const fragments = document.definitions.filter((d) => d.kind === 'FragmentDefinition')
    const variants = []
    for (const op of operations) {
      const opName = op.name?.value
      if (!opName || (opName !== family && !opName.startsWith(`${family}__`))) {
        problems.push(`${name}: operation ${opName ?? '(anonymous)'} must be named ${family} or ${family}__<variant>`)
        continue
      }
      if (seenOperations.has(opName)) problems.push(`${name}: operation ${opName} is named twice`)
      seenOperations.add(opName)
      variants.push({ name: opName, document: { kind: 'Document', definitions: [op, ...fragments] } })
    }
    if (!variants.length) continue
    const roles = Object.keys(schemas).filter((role) => requires.split(' ').every((c) => hasCoordinate(schemas[role], c)))
    const entry = {
      name: family,
      file: name,
      text,
      document,
      requires,
      variants: variants.map((v) => v.name),
      byRole: {},
      pending: roles.length === 0,
    }
    families.push(entry)
    if (entry.pending) {
      pending.push(`${name}: no role's schema has ${requires} yet`)
      continue
    }
    const used = new Set()
    for (const role of roles) {
      const errors = []
      for (const variant of variants) {
        const found = validate(schemas[role], variant.document)
        checked += 1
        if (!found.length) {
          entry.byRole[role] = variant.name
          used.add(variant.name)
          break
        }
        errors.push(`${variant.name}: ${found.map((e) => e.message).join('; ')}`)
      }
      if (!entry.byRole[role]) problems.push(`${name}: no variant validates for ${role}, which has ${requires} (${errors.join(' | ')})`)
    }
    for (const variant of variants) {
      if (used.has(variant.name)) continue
      // A fallback variant no built-in role picks must still be valid somewhere: a role whose policy was narrowed.
      if (!roles.some((role) => !validate(schemas[role], variant.document).length)) {
        problems.push(`${name}: variant ${variant.name} validates for no role that has ${requires}`)
      }
    }
  }
  return { families, problems, pending, checked }
}
