import { buildSchema, parse, validate } from 'graphql'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module without types
import { analyse } from './documents.mjs'

const schemas = {
  chief: buildSchema('type Query { patient(id: ID!): Patient! } type Patient { name: String! idNumber: String }'),
  physician: buildSchema('type Query { patient(id: ID!): Patient! } type Patient { name: String! }'),
  anonymous: buildSchema('type Query { serverInfo: String }'),
}
const run = (text: string, name = 'PatientHistory.graphql') => analyse({ files: [{ name, text }], schemas, validate, parse })

describe('the console document check', () => {
  it("accepts variants that cover every role whose schema has the page's root field", () => {
    const result = run(`# requires: Query.patient
      query PatientHistory($id: ID!) { patient(id: $id) { name idNumber } }
      query PatientHistory__noIdNumber($id: ID!) { patient(id: $id) { name } }`)
    expect(result.problems).toEqual([])
    expect(result.families[0].byRole).toEqual({ chief: 'PatientHistory', physician: 'PatientHistory__noIdNumber' })
  })

  it('fails a document that a role able to open the page cannot run', () => {
    const result = run(`# requires: Query.patient
      query PatientHistory($id: ID!) { patient(id: $id) { name idNumber } }`)
    expect(result.problems.join()).toMatch(/no variant validates for physician/)
  })

  it('fails a variant no role can run, a missing requires line and a misnamed operation', () => {
    expect(run(`# requires: Query.patient
      query PatientHistory($id: ID!) { patient(id: $id) { name } }
      query PatientHistory__x($id: ID!) { patient(id: $id) { nothing } }`).problems.join()).toMatch(/PatientHistory__x validates for no role/)
    expect(run('query PatientHistory { x }').problems.join()).toMatch(/no "# requires/)
    expect(run('# requires: Query.patient\nquery Other($id: ID!) { patient(id: $id) { name } }').problems.join()).toMatch(/must be named/)
  })

  it('reports a document whose root field no role has yet as pending, not failing', () => {
    const result = run('# requires: Query.myMenus\nquery MyMenus { myMenus { id } }', 'MyMenus.graphql')
    expect(result.problems).toEqual([])
    expect(result.pending).toHaveLength(1)
    expect(result.families[0].pending).toBe(true)
  })
})

describe('a page needing several fields', () => {
  it('is checked for the roles whose schema has them all', () => {
    const result = analyse({
      files: [{ name: 'Roles.graphql', text: '# requires: Query.patient Query.serverInfo\nquery Roles { serverInfo }' }],
      schemas: { ...schemas, both: buildSchema('type Query { patient: String serverInfo: String }') },
      validate,
      parse,
    })
    expect(result.problems).toEqual([])
    expect(Object.keys(result.families[0].byRole)).toEqual(['both'])
  })
})
