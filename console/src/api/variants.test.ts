import { describe, expect, it } from 'vitest'
import { VARIANTS } from '@/gql/variants'
import { variantOrder } from './variants'

const table = {
  PatientHistory: {
    requires: 'Query.patient',
    variants: ['PatientHistory', 'PatientHistory__noIdNumber'],
    byRole: { admin: 'PatientHistory', chief_physician: 'PatientHistory', physician: 'PatientHistory__noIdNumber' },
  },
}

describe('variantOrder', () => {
  it("starts with the richest variant one of the user's roles validates", () => {
    expect(variantOrder('PatientHistory', ['physician'], table)).toEqual(['PatientHistory__noIdNumber', 'PatientHistory'])
    expect(variantOrder('PatientHistory', ['physician', 'chief_physician'], table)).toEqual(['PatientHistory', 'PatientHistory__noIdNumber'])
  })

  it('tries every variant, richest first, for a role the checked-in schemas do not know', () => {
    expect(variantOrder('PatientHistory', ['custom_role'], table)).toEqual(['PatientHistory', 'PatientHistory__noIdNumber'])
  })

  it('the generated table: physicians get the patient without idNumber, chief physicians with it', () => {
    expect(VARIANTS.PatientHistory!.byRole.physician).toBe('PatientHistory__noIdNumber')
    expect(VARIANTS.PatientHistory!.byRole.chief_physician).toBe('PatientHistory')
    expect(VARIANTS.PatientHistory!.byRole.admin).toBe('PatientHistory')
  })
})
